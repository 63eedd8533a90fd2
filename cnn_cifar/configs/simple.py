# The SimpleCNN recipe (make cnn_cifar), run by both implementations from the same initial weights on the same
# batches: --impl=numpy --run=numpy-simplecnn and --impl=torch --run=torch-simplecnn. Conv 32-64-128 (3x3, ReLU,
# max-pool 2) + fc 256 + fc 10; the defaults' SGD (Nesterov 0.9, weight decay 5e-4, 200 warm-up steps then cosine
# from 0.03 to 0) on batches of 128 augmented with reflect-pad-4 random crops and horizontal flips, for 10 epochs.
# Target: >= 65% test accuracy. The augmentation ablation (make study-cnn_cifar) is the PyTorch twin with
# --augment=false --run=torch-simplecnn-noaug --group=augmentation.
epochs = 10
save_weights = True
