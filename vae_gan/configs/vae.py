# pytorch/examples' VAE (vae/main.py): 784-400-20-400-784, ReLU, Adam 1e-3, batch 128, 10 epochs, the summed
# binary cross-entropy on continuous MNIST plus the KL term. Its log: test loss ~104-107 nats per image after 10
# epochs. Target (issue 12): <= 104 in PyTorch, the NumPy twin within 1 nat.
model = "vae"
hidden = 400
latent = 20
lr = 1e-3
batch_size = 128
epochs = 10
save_weights = True
