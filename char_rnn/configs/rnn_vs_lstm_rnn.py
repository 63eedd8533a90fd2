# RNN vs LSTM at equal parameter count and equal training time (make study-char_rnn), the RNN side:
# NumPy vanilla RNN 1x526 = 345,647 parameters against the LSTM 1x256's 346,433; the same recipe and 10 minutes
# of training time. Measured ~72 ms/step (1 thread, under load) -> ~8,000 steps.
run = "pair-rnn-1x526"
cell = "rnn"
hidden = 526
seq_len = 64
max_minutes = 10.0
eval_interval = 250
save_weights = True
group = "rnn_vs_lstm"
