# The headline recipe, identical for NumPy and PyTorch (make mlp_mnist).
dropout = 0.2
save_weights = True
