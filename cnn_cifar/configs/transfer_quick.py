# A quick look at the transfer sweep (about 2 min on 2 idle cores): the two smallest sizes, 400 test images.
# The run names start with fast- so their records stay out of git (.gitignore).
prefix = "fast-transfer"
sizes = (100, 500)
test_subset = 400
max_steps = 60
group = "fast"
