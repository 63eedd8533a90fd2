"""MNIST data augmentation in NumPy: random affine transforms (rotation, scale, shift) and, optionally, elastic
distortion (Simard, Steinkraus & Platt 2003), applied to a whole batch by one vectorised bilinear resampling.

    rng = np.random.default_rng(0)
    xb_aug = augment_batch(xb, rng)                      # xb: (N, 28, 28) or (N, 784) float
    xb_aug = augment_batch(xb, rng, elastic=True)

For every output pixel we compute where it comes from in the input image (inverse mapping), then read the input
there with bilinear interpolation; pixels that come from outside the image take `fill` (0: MNIST's background).
No Python loop runs over images or pixels: coordinates are (N, H, W) arrays and the four neighbours are gathered
with one fancy index each.
"""

import numpy as np


def random_affine(n, rng, max_rotate=12.0, max_scale=0.1, max_shift=2.0):
    """Per image: angle ~ U(-max_rotate, max_rotate) degrees, scale ~ U(1 - max_scale, 1 + max_scale),
    shift (dy, dx) ~ U(-max_shift, max_shift)^2 pixels. Returns (angles in radians (n,), scales (n,), shifts (n, 2))."""
    angles = np.deg2rad(rng.uniform(-max_rotate, max_rotate, size=n)) if max_rotate else np.zeros(n)
    scales = rng.uniform(1.0 - max_scale, 1.0 + max_scale, size=n) if max_scale else np.ones(n)
    shifts = rng.uniform(-max_shift, max_shift, size=(n, 2)) if max_shift else np.zeros((n, 2))
    return angles, scales, shifts


def affine_source_coords(h, w, angles, scales, shifts):
    """Source coordinates (rows, cols), each (n, h, w), of the transform that rotates by `angle` and scales by
    `scale` about the image centre, then shifts by (dy, dx). Inverse mapping: for output pixel p,
    src = R(-angle) (p - c - shift) / scale + c, with c = ((h - 1) / 2, (w - 1) / 2)."""
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rows = np.arange(h, dtype=np.float64)[None, :, None] - cy - shifts[:, 0, None, None]  # (n, h, 1)
    cols = np.arange(w, dtype=np.float64)[None, None, :] - cx - shifts[:, 1, None, None]  # (n, 1, w)
    cos = (np.cos(angles) / scales)[:, None, None]
    sin = (np.sin(angles) / scales)[:, None, None]
    # rotation by +angle (counter-clockwise on screen, rows pointing down): [y, x] -> [cos y - sin x, sin y + cos x]
    # its inverse R(-angle): [y, x] -> [cos y + sin x, -sin y + cos x]
    src_r = cos * rows + sin * cols + cy
    src_c = -sin * rows + cos * cols + cx
    return src_r, src_c


def _gaussian_matrix(size, sigma):
    """(size, size) row-normalised Gaussian smoothing matrix: (K @ f) smooths f along its first axis."""
    d = np.arange(size)[:, None] - np.arange(size)[None, :]
    k = np.exp(-0.5 * (d / sigma) ** 2)
    k[np.abs(d) > 4 * sigma] = 0.0
    return k / k.sum(axis=1, keepdims=True)


def elastic_displacement(n, h, w, rng, alpha=34.0, sigma=4.0):
    """Simard et al.'s elastic field: uniform(-1, 1) noise per pixel and axis, smoothed by a Gaussian of width
    sigma (separable: K_h @ field @ K_w^T, batched), scaled by alpha. Returns (dy, dx), each (n, h, w)."""
    field = rng.uniform(-1.0, 1.0, size=(n, 2, h, w))
    smooth = _gaussian_matrix(h, sigma) @ field @ _gaussian_matrix(w, sigma).T
    return alpha * smooth[:, 0], alpha * smooth[:, 1]


def bilinear_sample(images, src_r, src_c, fill=0.0):
    """Read images (n, h, w) at fractional coordinates src_r, src_c (n, h', w') by bilinear interpolation;
    neighbours outside the image read `fill`. Returns (n, h', w') in the images' dtype."""
    n, h, w = images.shape
    dtype = images.dtype
    padded = np.full((n, h + 2, w + 2), fill, dtype=dtype)  # one ring of fill around each image
    padded[:, 1:-1, 1:-1] = images
    flat = padded.reshape(-1)
    r0 = np.floor(src_r)
    c0 = np.floor(src_c)
    fr = (src_r - r0).astype(dtype)
    fc = (src_c - c0).astype(dtype)
    # neighbour indices in padded coordinates (image row r is padded row r + 1); a neighbour outside the image
    # reads padded row/column 0, which is fill
    r0 = r0.astype(np.int64) + 1
    c0 = c0.astype(np.int64) + 1
    r1, c1 = r0 + 1, c0 + 1
    r0, r1 = (np.where((r >= 1) & (r <= h), r, 0) for r in (r0, r1))
    c0, c1 = (np.where((c >= 1) & (c <= w), c, 0) for c in (c0, c1))
    base = (np.arange(n) * (h + 2) * (w + 2))[:, None, None]
    top = base + r0 * (w + 2)
    bottom = base + r1 * (w + 2)
    v00, v01 = flat[top + c0], flat[top + c1]
    v10, v11 = flat[bottom + c0], flat[bottom + c1]
    upper = v00 + fc * (v01 - v00)
    lower = v10 + fc * (v11 - v10)
    return upper + fr * (lower - upper)


def augment_batch(
    images,
    rng,
    max_shift=2.0,
    max_rotate=12.0,
    max_scale=0.1,
    elastic=False,
    alpha=34.0,
    sigma=4.0,
    fill=0.0,
    image_shape=(28, 28),
):
    """A random affine transform (and optionally an elastic distortion) per image, one resampling for all.

    images: (N, H, W) or (N, H*W) float (flat rows are viewed as `image_shape`); rng: np.random.Generator.
    Returns an array of the same shape and dtype (floats; anything else comes back as float32). Labels are
    unaffected (the transforms are small enough to keep every digit's class).
    With max_shift = max_rotate = max_scale = 0 and elastic=False the output equals the input exactly.
    """
    images = np.asarray(images)
    shape = images.shape
    if images.ndim == 2:
        images = images.reshape(shape[0], *image_shape)
    if images.ndim != 3:
        raise ValueError(f"expected (N, H, W) or (N, H*W) images, got shape {shape}")
    if not np.issubdtype(images.dtype, np.floating):
        images = images.astype(np.float32)
    n, h, w = images.shape
    src_r, src_c = affine_source_coords(h, w, *random_affine(n, rng, max_rotate, max_scale, max_shift))
    if elastic:
        dy, dx = elastic_displacement(n, h, w, rng, alpha, sigma)
        src_r = src_r + dy
        src_c = src_c + dx
    out = bilinear_sample(images, src_r, src_c, fill=fill)
    return out.reshape(shape)
