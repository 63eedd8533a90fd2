# nanoGPT's CPU recipe, the "baby GPT" of its README (train_shakespeare_char.py at CPU scale), run by both
# implementations: --impl=numpy --run=numpy-gpt-4x128 and --impl=torch --run=torch-gpt-4x128 (make nanogpt).
# The recipe is train.py's defaults: 4 layers, 4 heads, 128 channels, context 64, batch 12, 2,000 iterations,
# AdamW 1e-3 (warm-up 100) cosine to 1e-4 at 2,000, betas (0.9, 0.99), weight decay 0.1, clipping at 1, no
# dropout, no biases; estimates over 20 batches every 250 iterations. nanoGPT reports a val loss of about 1.88.
save_weights = True
