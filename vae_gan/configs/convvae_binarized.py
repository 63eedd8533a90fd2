# The convolutional VAE on dynamically binarised MNIST, scored like configs/vae_binarized.py (goal: test NLL
# <= 84 nats at k = 5,000). Its decoder costs ~24x the MLP's multiply-adds, so on this CPU's budget: 20 epochs,
# and the NLL of the first 1,000 test images (k = 5,000 is 5 million decodes).
impl = "torch"
model = "convvae"
channels = 32
hidden = 256
latent = 32
binarize = True
lr = 1e-3
batch_size = 128
epochs = 20
nll_k = 5000
nll_images = 1000
group = "nll"
save_weights = False  # 6 MB, kept out of git: rerun with --save_weights=true to keep the weights
fid_samples = 0  # FID is measured on the continuous-pixel runs
