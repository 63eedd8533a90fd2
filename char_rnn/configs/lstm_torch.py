# The PyTorch headline (make char_rnn): a 2-layer LSTM, 384 units, one-hot input, dropout 0.25 between the layers,
# 60 minutes of CPU training on 1 thread. Target: val loss <= 1.55 nats/char (nanoGPT's CPU 'baby GPT': 1.88).
# Measured on this 2-core machine under load (1 thread): 0.86-0.94 s/step -> ~4,000 steps, ~16M characters
# (~16 epochs) in 60 min of training time; each full-validation evaluation adds ~8 s of wall clock.
# 1,897,409 parameters: 7.6 MB of float32 weights, under the 10 MB limit (2x512 would be 13.3 MB).
impl = "torch"
cell = "lstm"
layers = 2
hidden = 384
dropout = 0.25
batch_size = 32
seq_len = 128
lr = 2e-3
min_lr = 1e-4
warmup_steps = 50
grad_clip = 5.0
max_minutes = 60.0
eval_interval = 200
save_weights = True
group = "headline"
