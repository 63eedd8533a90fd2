# Figure 6 on a schedule 4 times shorter than the paper's (16k iterations, lr / 10 at 8k and 12k), evaluated every
# 500 iterations; the four networks by flags:
#   --depth=20 --plain=true --run=fig6-plain20     --depth=56 --plain=true --run=fig6-plain56
#   --depth=20 --run=fig6-resnet20                  --depth=56 --run=fig6-resnet56
# What must show: plain-56 trains to a higher training error than plain-20 (degradation), ResNet-56 to a lower
# one than ResNet-20.
iterations = 16000
milestones = (8000, 12000)
eval_every = 500
bf16 = True
group = "figure6"
