# The headline recipe, identical for NumPy and PyTorch (make mlp_mnist).
hidden = (800, 800)
dropout = 0.2
optimizer = "adam"
lr = 1e-3
schedule = "cosine"
epochs = 20
batch_size = 128
save_weights = True
