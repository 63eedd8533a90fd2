# The 2-D latent VAE, for pictures: test codes scattered by digit and the decoded manifold on a grid (Kingma &
# Welling 2014, figure 4). pytorch/examples' recipe with a 2-dimensional z, 512 hidden units and 20 epochs.
impl = "torch"
model = "vae"
hidden = 512
latent = 2
lr = 1e-3
batch_size = 128
epochs = 20
group = "latent2d"
save_weights = True
