# He et al. 2016, section 4.2: the CIFAR-10 recipe, which is also train.Config's defaults (tests/test_train.py
# checks that the two agree). ResNet-20; other depths: --depth=32|44|56 --run=resnet32 ... (ResNet-110 adds
# configs/resnet110.py's warm-up). bf16 autocast and channels_last change how fast it runs, not the recipe:
# add --bf16=true where the CPU has bf16 units.
run = "resnet20"
depth = 20
widths = (16, 32, 64)
batch_size = 128
lr = 0.1
momentum = 0.9
weight_decay = 1e-4
iterations = 64000
milestones = (32000, 48000)
lr_decay = 0.1
padding = 4
flip = True
val_size = 5000
eval_every = 2000
save_weights = True
