# A quick look at the whole pipeline (make char_rnn FAST=1, about 1 minute for three runs): small models, a few
# hundred steps, intermediate evaluations on a 20,000-character prefix of the validation text (the final
# val_loss still streams all of it). The Makefile picks --impl, --cell, --run=fast-<impl>-<cell>, --threads=1.
hidden = 128
seq_len = 64
lr = 3e-3
min_lr = 3e-4
warmup_steps = 20
max_steps = 300
eval_interval = 100
eval_chars = 20000
group = "fast"
