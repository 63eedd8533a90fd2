"""Drawing the next token from a language model's logits: one rule for every implementation (NumPy or PyTorch
logits alike, read as a NumPy vector), so the same numpy Generator gives the same text from twin models.

    prime, rng = sampling_inputs(prime_ids, temperature, top_k, rng)     # checked arguments
    next_id = pick_next(logits, temperature, top_k, rng)                 # logits (V,)
"""

import numpy as np


def sampling_inputs(prime_ids, temperature, top_k, rng):
    """Validate sample()'s arguments: (prime ids as an int64 vector, a numpy Generator)."""
    prime = np.asarray(prime_ids, dtype=np.int64).reshape(-1)
    if prime.size == 0:
        raise ValueError("prime_ids must contain at least one id")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    return prime, (np.random.default_rng() if rng is None else rng)


def pick_next(logits, temperature, top_k, rng):
    """One id from logits (V,): argmax at temperature 0, else a draw from softmax(logits / temperature) with the
    numpy Generator `rng`, among the top_k most likely only when top_k is set."""
    z = np.asarray(logits, dtype=np.float64)
    if top_k is not None and top_k < z.size:
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
    if temperature == 0:
        return int(np.argmax(z))
    z = z / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    return int(rng.choice(z.size, p=p))
