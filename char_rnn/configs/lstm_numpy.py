# The NumPy headline LSTM's recipe (make char_rnn), run by both implementations: --impl=torch
# --run=torch-lstm-1x512 is its PyTorch twin. One layer of 512 units, one-hot input (char-rnn's choice), the
# defaults' Adam 2e-3 with a cosine to 2e-4, clipping at 5. Target: val loss <= 1.80 nats/char.
# Measured (1 thread, machine under load): ~0.5 s/step -> 4,000 steps (12.8M characters, ~12.7 epochs) in ~33 min
# of training time; each full-validation evaluation adds ~8 s. 1,217,089 parameters (4.9 MB).
hidden = 512
max_steps = 4000
eval_interval = 250
save_weights = True
