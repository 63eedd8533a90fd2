# make resnet_repro's ResNet-20: the paper's recipe (configs/paper.py first) on a schedule 8/3 times shorter, 24k
# iterations with lr / 10 at 12k and 18k (3.1M images, 68 epochs), bf16 autocast: about 40 minutes at the
# ~1,375 images/s of a Zen 5 on 2 threads. The paper's full 64k iterations are make study-resnet_repro's.
run = "resnet20-short"
iterations = 24000
milestones = (12000, 18000)
bf16 = True
group = "short"
save_weights = False
