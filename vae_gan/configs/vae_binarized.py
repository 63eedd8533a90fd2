# The literature's measure: the MLP VAE (784-400-20-400-784) on dynamically binarised MNIST, scored by the
# importance-weighted estimate of the test NLL with k = 5,000 samples per image (Burda et al. 2016, whose
# one-stochastic-layer VAE reaches 86.76 nats after 3,280 epochs). Here a budget of 50 epochs.
impl = "torch"
model = "vae"
hidden = 400
latent = 20
binarize = True
lr = 1e-3
batch_size = 128
epochs = 50
nll_k = 5000
group = "nll"
save_weights = True
fid_samples = 0  # FID is measured on the continuous-pixel runs
