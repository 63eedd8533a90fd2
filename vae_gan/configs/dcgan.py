# DCGAN for 28 x 28 MNIST (PyTorch): transposed convolutions 1 -> 7 -> 14 -> 28 with batch norm, strided
# convolutions back, weights N(0, 0.02), Adam 2e-4 with beta1 0.5 and the latent of 100 of pytorch/examples' dcgan.
impl = "torch"
model = "dcgan"
latent = 100
channels = 64
lr = 2e-4
beta1 = 0.5
batch_size = 128
epochs = 10
save_weights = True
group = "gan"  # their own table in REPORT.md
