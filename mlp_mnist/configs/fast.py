# A quick look at the whole pipeline (make mlp_mnist FAST=1): a small MLP, a few epochs on part of MNIST.
hidden = (128,)
epochs = 2
train_subset = 12000
val_size = 2000
group = "fast"
