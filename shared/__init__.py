"""Small pieces that two or more projects use: data, gradient checking, NumPy layers and optimizers,
seeding, checkpoints, run records, reports, logging and plots."""
