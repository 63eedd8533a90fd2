# A quick look at the whole pipeline (make cnn_cifar FAST=1): 2 epochs on 5,000 seeded training images, evaluated
# on 2,000 seeded (class-mixed) test images. About half a minute per run on one thread.
epochs = 2
train_subset = 5000
test_subset = 2000
warmup_steps = 20
group = "fast"
save_weights = False  # overrides the recipe file before it: a quick look never writes committed weights
