# The augmentation ablation (make study-cnn_cifar): simple_torch.py without random crops and flips. The PyTorch twin
# is the cheaper of the two identical networks, so the ablation runs there.
impl = "torch"
run = "torch-simplecnn-noaug"
epochs = 10
augment = False
group = "augmentation"
