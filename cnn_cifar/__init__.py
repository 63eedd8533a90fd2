"""CIFAR-10 CNNs: a NumPy convolutional network from first principles (scratch.py) and its PyTorch twin."""
