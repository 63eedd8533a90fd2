# A quick look at the whole pipeline (make nanogpt FAST=1): the recipe's model for 100 iterations, the schedule
# shortened to match, estimates over 5 batches every 50 iterations (the final val_loss_full still scores the whole
# validation split). The Makefile picks --impl, --run=fast-<impl>-gpt and --threads=1.
max_iters = 100
warmup_iters = 10
lr_decay_iters = 100
eval_interval = 50
eval_iters = 5
group = "fast"
