"""vae_gan: a VAE and a GAN on MNIST, from scratch in NumPy and in PyTorch, with their quality measured."""
