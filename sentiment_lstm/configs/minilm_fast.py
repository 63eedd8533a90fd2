# A quick look at the MiniLM fine-tune (FAST=1): LoRA (rank 8, query and value) on 400 training reviews cut to
# 64 positions (head + tail), one epoch of 25 steps, scored on 200 validation and 200 test reviews; well under
# a minute on one thread. Not a result: group "fast", and git keeps its record and weights out.
impl = "torch"
model = "minilm"
run = "fast-minilm-lora"
keep = "both"
max_len = 64
train_subset = 400
eval_subset = 200
epochs = 1
patience = 0
batch_size = 16
lr = 1e-3
min_lr = 0.0
weight_decay = 0.01
grad_clip = 1.0
precision = "bf16"
eval_batch = 64
warmup_steps = 5
group = "fast"
save_weights = False
