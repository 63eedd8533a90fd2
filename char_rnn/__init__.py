"""Character-level language model with a vanilla RNN and an LSTM, written in NumPy (scratch.py) and PyTorch."""
