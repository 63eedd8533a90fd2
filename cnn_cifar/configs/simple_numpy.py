# The headline NumPy Conv-Pool-FC network (make cnn_cifar): conv 32-64-128 (3x3, ReLU, max-pool 2) + fc 256 + fc 10,
# 10 epochs of SGD (Nesterov 0.9, weight decay 5e-4, 200 warm-up steps then cosine from 0.03 to 0) on batches of 128
# augmented with reflect-pad-4 random crops and horizontal flips. Target: >= 65% test accuracy.
run = "numpy-simplecnn"
epochs = 10
save_weights = True
