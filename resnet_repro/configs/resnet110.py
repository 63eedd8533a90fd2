# ResNet-110 (Table 6: 6.43%, best of 5 runs; mean 6.61 +- 0.16): the paper's recipe (configs/paper.py first) with
# its warm-up, 0.01 "until the training error is below 80% (about 400 iterations)", here a fixed 400 iterations.
run = "resnet110"
depth = 110
warmup_iterations = 400
warmup_lr = 0.01
