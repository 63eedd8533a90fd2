# The PyTorch twin of the NumPy headline: apply after lstm_numpy.py
#   python -m sentiment_lstm.train --config=sentiment_lstm/configs/lstm_numpy.py \
#       --config=sentiment_lstm/configs/lstm_twin.py --threads=1
# Same recipe, same initial weights (the NumPy model's of the same seed), same batches in the same order; only
# the dropout masks differ (torch draws its own). The run is torch-lstm-mean-e96-h128.
impl = "torch"
