# RNN vs LSTM at equal parameter count and equal training time (make study-char_rnn), the LSTM side:
# NumPy LSTM 1x256 = 346,433 parameters against the RNN 1x526's 345,647 (0.2% apart); both get the same recipe
# and 10 minutes of training time. Measured ~110 ms/step (1 thread, under load) -> ~5,500 steps.
run = "pair-lstm-1x256"
seq_len = 64
max_minutes = 10.0
eval_interval = 250
save_weights = True
group = "rnn_vs_lstm"
