"""MLPs on MNIST: a NumPy network library with hand-derived backward passes (scratch.py) and its PyTorch twin
(model.py), trained with the same recipe (train.py)."""
