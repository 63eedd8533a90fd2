# The hour (make study-nanogpt): a 6-layer, 160-channel GPT with rotary positions, context 256, trained for 60
# minutes of training time on one thread of this CPU, beside a 1-thread job on the other core (char_rnn's LSTM
# recipe, 2x384, in make study-nanogpt): the two have about the same parameter count (1,855,680 against
# 1,897,409), so the pair is GPT vs LSTM at equal parameters and equal wall-clock. Target: val loss <= 1.50
# nats/char (char_rnn's LSTM: 1.503 in its hour). bf16 autocast and the fused AdamW for speed. Dropout 0.2
# (nanoGPT's rate for its Shakespeare GPT) on the residual branches and the embeddings only: without it this
# model overfit (at 34 min train 1.18, val 1.525 and flat), and torch's attention dropout takes the slow
# attention path on a CPU (a step measured 2x longer), while residual dropout costs ~4%. The cosine runs over
# the time budget.
impl = "torch"
n_layer = 6
n_head = 4
n_embd = 160
block_size = 256
dropout = 0.2
attn_dropout = 0.0
pos = "rotary"
batch_size = 32
learning_rate = 2e-3
min_lr = 1e-4
warmup_iters = 200
max_iters = 1_000_000  # the time budget ends the run
lr_decay_iters = 1_000_000
max_minutes = 60.0
eval_interval = 250
eval_iters = 20
precision = "bf16"
fused = True
threads = 1
save_weights = True
