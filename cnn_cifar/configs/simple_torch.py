# The same network, recipe, initial weights and batches as simple_numpy.py, in PyTorch (make cnn_cifar).
impl = "torch"
run = "torch-simplecnn"
epochs = 10
save_weights = True
