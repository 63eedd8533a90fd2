# The LeNet-style PyTorch CNN (make cnn_cifar), target >= 75% test accuracy: LeNet-5's conv5x5-pool-conv5x5-pool-
# fc-fc-fc with 'valid' convolutions, widened to 48/96 channels and fc 384/192, with batch norm and ReLU.
# Same data pipeline and schedule family as the SimpleCNN runs; batch norm allows the higher peak rate.
impl = "torch"
model = "lenet"
run = "torch-lenet"
channels = (48, 96)
hidden = (384, 192)
epochs = 10
lr = 0.05
save_weights = True
