# A quick look at the pipeline: the VAE recipe on 6,000 training images for 2 epochs, scored on 2,000 test images.
model = "vae"
train_subset = 6000
eval_subset = 2000
epochs = 2
group = "fast"
