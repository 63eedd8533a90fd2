# The PyTorch headline (make char_rnn): a 2-layer LSTM, 384 units, one-hot input, dropout 0.3 between the layers,
# 60 minutes of CPU training on 1 thread (the other core trains the NumPy models in make char_rnn).
# Target: val loss <= 1.55 nats/char (nanoGPT's CPU 'baby GPT': 1.88). bf16 autocast for the training step:
# 0.35 s/step against 0.59 s in fp32 on a quiet core (batch 32 x 128). Measured beside another 1-thread run:
# 0.37 s/step, 9,797 steps (~40 epochs) in 60 min of training time, val 1.503; each full-validation evaluation
# (fp32) adds ~5 s of wall clock. 1,897,409 parameters: 7.6 MB of float32 weights, under the 10 MB limit.
impl = "torch"
layers = 2
hidden = 384
dropout = 0.3
seq_len = 128
min_lr = 1e-4
precision = "bf16"
max_minutes = 60.0
eval_interval = 250
save_weights = True
