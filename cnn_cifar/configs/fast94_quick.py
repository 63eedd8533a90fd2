# A quick look at the fast94 pipeline (about 1 min on 2 idle cores): 1 epoch on 10,000 images, no TTA.
# The run name starts with fast- so its record stays out of git (.gitignore).
run = "fast-fast94"
epochs = 1.0
train_subset = 10000
tta = 0
group = "fast"
