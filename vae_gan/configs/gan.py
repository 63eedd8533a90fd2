# The MLP GAN, NumPy and its PyTorch twin: G z(64) -> 256 -> 512 -> 784 tanh, D 784 -> 512 -> 256 -> 1, LeakyReLU
# 0.2, the non-saturating loss, Adam 2e-4 with beta1 0.5 for both (pytorch/examples' dcgan), batch 128.
model = "gan"
latent = 64
lr = 2e-4
beta1 = 0.5
batch_size = 128
epochs = 30
save_weights = True
group = "gan"  # their own table in REPORT.md
