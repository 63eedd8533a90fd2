# NumPy MLP with augmentation and dropout, aiming at >= 99.0% (Simard et al. 2003: 1.1% error with affine
# distortions for 784-800-10). Longer: make study-mlp_mnist runs it.
dropout = 0.3
augment = True
epochs = 60
save_weights = True
