"""IMDB sentiment: baselines (scikit-learn), an LSTM classifier written in NumPy (scratch.py) and in PyTorch."""
