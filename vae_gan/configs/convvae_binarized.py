# The convolutional VAE on dynamically binarised MNIST, scored like configs/vae_binarized.py (goal: test NLL
# <= 84 nats at k = 5,000).
impl = "torch"
model = "convvae"
channels = 32
hidden = 256
latent = 32
binarize = True
lr = 1e-3
batch_size = 128
epochs = 50
nll_k = 5000
group = "nll"
save_weights = True
