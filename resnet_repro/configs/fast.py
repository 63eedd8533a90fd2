# A quick look at the whole pipeline (make resnet_repro FAST=1): ResNet-20, the paper's recipe on a schedule 160
# times shorter (400 iterations, lr / 10 at 200 and 300), scored on 1,000 validation and 2,000 seeded test images
# every 100 iterations; bf16 autocast. About 2 minutes on one busy thread. The run name starts with fast- so its
# record stays out of git (.gitignore).
run = "fast-resnet20"
iterations = 400
milestones = (200, 300)
eval_every = 100
val_size = 1000
test_subset = 2000
bf16 = True
group = "fast"
save_weights = False
