# The NumPy headline LSTM (make char_rnn): one layer of 512 units, one-hot input (char-rnn's choice), Adam 2e-3
# with a cosine to 2e-4, clipping at 5. Target: val loss <= 1.80 nats/char.
# Measured (1 thread, machine under load): ~0.5 s/step -> 4,000 steps (12.8M characters, ~12.7 epochs) in ~33 min
# of training time; each full-validation evaluation adds ~8 s. 1,217,089 parameters (4.9 MB).
impl = "numpy"
cell = "lstm"
layers = 1
hidden = 512
batch_size = 32
seq_len = 100
lr = 2e-3
min_lr = 2e-4
warmup_steps = 100
grad_clip = 5.0
max_steps = 4000
eval_interval = 250
save_weights = True
group = "headline"
