# Figure 6 on a schedule 8 times shorter than the paper's (8k iterations of 128, 23 epochs, lr / 10 at 4k and 6k),
# evaluated every 250 iterations; the four networks by flags:
#   --depth=20 --plain=true --run=fig6-plain20     --depth=56 --plain=true --run=fig6-plain56
#   --depth=20 --run=fig6-resnet20                  --depth=56 --run=fig6-resnet56
# What must show: plain-56 trains to a higher training error than plain-20 (degradation), ResNet-56 to a lower
# one than ResNet-20. Measured on a Zen 5: the two 20-layer runs took 34-37 minutes each side by side on one
# thread each (evaluations of 15,000 images every 250 iterations included); a 56-layer one is ~2.7 times the work,
# so the four take about 2 hours of both cores: one session, where the paper's 64k would take several.
iterations = 8000
milestones = (4000, 6000)
eval_every = 250
bf16 = True
group = "figure6"
