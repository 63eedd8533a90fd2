# NumPy MLP with augmentation and dropout, aiming at >= 99.0% (Simard et al. 2003: 1.1% error with affine
# distortions for 784-800-10). Longer: make study-mlp_mnist runs it.
hidden = (800, 800)
dropout = 0.3
augment = True
optimizer = "adam"
lr = 1e-3
schedule = "cosine"
epochs = 60
batch_size = 128
save_weights = True
