# The augmentation ablation (make study-cnn_cifar): simple_torch.py without random crops and flips. The PyTorch twin
# is the cheaper of the two identical networks, so the ablation runs there.
impl = "torch"
model = "simple"
run = "torch-simplecnn-noaug"
epochs = 10
batch_size = 128
lr = 0.03
momentum = 0.9
nesterov = True
weight_decay = 5e-4
warmup_steps = 200
augment = False
group = "augmentation"
