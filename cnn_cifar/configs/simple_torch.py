# The same network, recipe, initial weights and batches as simple_numpy.py, in PyTorch (make cnn_cifar).
impl = "torch"
model = "simple"
run = "torch-simplecnn"
epochs = 10
batch_size = 128
lr = 0.03
momentum = 0.9
nesterov = True
weight_decay = 5e-4
warmup_steps = 200
augment = True
crop_padding = 4
pad_mode = "reflect"
flip = True
save_weights = True
