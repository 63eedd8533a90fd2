# The largest 2-layer LSTM under the 10 MB weights limit, as an alternative PyTorch headline: lstm_torch.py with
# 448 units (2,553,921 parameters, 10.2 MB < 10 MiB) and dropout 0.35. Trained side by side with it, one core
# each: ~0.47 s/step, so ~7,500 steps (~31M characters) in the same 60 minutes. Bigger model, fewer characters.
impl = "torch"
cell = "lstm"
layers = 2
hidden = 448
dropout = 0.35
batch_size = 32
seq_len = 128
lr = 2e-3
min_lr = 1e-4
warmup_steps = 100
grad_clip = 5.0
precision = "bf16"
max_minutes = 60.0
eval_interval = 250
save_weights = True
group = "headline"
