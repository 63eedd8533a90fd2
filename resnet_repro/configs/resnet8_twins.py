# The twins: the NumPy ResNet-8 (scratch.py) and its PyTorch twin, the same recipe from the same initial weights on
# the same batches: --impl=numpy --run=numpy-resnet8 and --impl=torch --run=torch-resnet8. ResNet-8 (one block per
# stage, the paper's widths, 75,290 parameters), the paper's optimiser on a short schedule: 800 iterations (2.3
# epochs), lr / 10 at 400 and 600. The NumPy side takes about 10 minutes on one thread (7 of them training, at
# about 240 images/s; 3 scoring the 15,000 validation and test images 4 times).
depth = 8
iterations = 800
milestones = (400, 600)
eval_every = 200
save_weights = True
group = "twins"
