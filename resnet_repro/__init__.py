"""resnet_repro: He et al. 2016 on CIFAR-10 (Table 6, Figure 6), the residual block from scratch in NumPy."""
