# The NumPy LSTM headline (make sentiment_lstm): one unidirectional LSTM of 128 units over a 96-wide embedding
# of the 20,000-entry vocabulary, mean pooling over the valid steps, dropout 0.3 on the embedded inputs and the
# pooled vector, reviews cut to their last 400 tokens. Adam 2e-3 with a cosine to 2e-4 over 12 epochs, clipping
# at 5; early stopping on validation accuracy (patience 3); at most 30 minutes of training time.
# Target (issue 11): test accuracy >= 85%.
# Throughput (short smoke, 1 thread, machine under load, full training set): ~6.8 steps/s at 128/128 units,
# i.e. ~1.7 min per epoch of 704 batches; these settings should take ~1.5-2 min per epoch.
# 2,035,458 parameters (8.1 MB of float32 weights, under the 10 MB limit).
embed = 96
hidden = 128
pool = "mean"
dropout = 0.3
max_len = 400
keep = "last"
epochs = 12
patience = 3
max_minutes = 30.0
save_weights = True
