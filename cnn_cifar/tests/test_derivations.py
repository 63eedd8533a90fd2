"""The derivations of REPORT.md (section "Derivations: the backward passes of convolution and max-pooling"),
each checked against the code it names, in float64.

Every formula is written out here as the report writes it, as NumPy sums over its indices (one slice per kernel
offset, or plain loops over the windows), never through shared.conv, and compared with shared.conv's forward and
backward passes. The last test checks that each line of code the report quotes still stands, word for word, in
the function it names.
"""

from pathlib import Path

import numpy as np
import pytest

from shared.conv import (
    col2im,
    conv2d,
    conv2d_backward,
    im2col,
    maxpool2d,
    maxpool2d_backward,
    maxpool2x2,
    maxpool2x2_backward,
)
from shared.quotes import missing_quotes, quoted_code

REPORT = Path(__file__).resolve().parents[1] / "REPORT.md"


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def pad(x, top, bottom, left, right):
    """Zero-pad the two spatial axes of (N, H, W, C)."""
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def offset_slice(x, p, q, stride, ho, wo):
    """x[:, s i + p, s j + q, :] for all i < ho, j < wo: (N, ho, wo, C)."""
    return x[:, p : p + stride * (ho - 1) + 1 : stride, q : q + stride * (wo - 1) + 1 : stride]


def correlate(x, kernel, stride=1):
    """The report's forward sum on an already padded x, without bias:
    y[n, i, j, o] = sum_{p, q, c} x[n, s i + p, s j + q, c] K[p, q, c, o]. x (N, H, W, A), K (kh, kw, A, B)."""
    kh, kw = kernel.shape[:2]
    ho, wo = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    y = np.zeros((x.shape[0], ho, wo, kernel.shape[3]))
    for p in range(kh):
        for q in range(kw):
            y += np.einsum("nijc,co->nijo", offset_slice(x, p, q, stride, ho, wo), kernel[p, q])
    return y


def flipped(kernel):
    """K~[p, q, o, c] = K[kh - 1 - p, kw - 1 - q, c, o]: both spatial axes flipped, channel axes swapped."""
    return kernel[::-1, ::-1].transpose(0, 1, 3, 2)


def full_correlation_with_flipped_kernel(dy, kernel):
    """sum_{p', q', o} dy^[n, u + p', v + q', o] K~[p', q', o, c], dy^ = dy zero-padded by kh - 1, kw - 1."""
    kh, kw = kernel.shape[:2]
    return correlate(pad(dy, kh - 1, kh - 1, kw - 1, kw - 1), flipped(kernel))


# ---- convolution, index by index

CONV_CASES = [  # (x shape, kernel shape, stride, padding); non-square kernels and images, C_in != C_out
    ((2, 7, 6, 3), (3, 3, 3, 4), 1, 0),
    ((2, 7, 6, 3), (3, 3, 3, 4), 1, 1),
    ((2, 6, 7, 3), (2, 3, 3, 5), 1, 0),
    ((2, 6, 7, 3), (2, 3, 3, 5), 1, 1),
    ((2, 8, 7, 3), (3, 3, 3, 4), 2, 1),
    ((2, 9, 8, 2), (2, 3, 2, 3), 3, 0),
]


@pytest.mark.parametrize("x_shape, k_shape, stride, padding", CONV_CASES)
def test_forward_is_the_sum_and_im2col_rows_are_the_receptive_fields(x_shape, k_shape, stride, padding):
    x, kernel, bias = randn(*x_shape, seed=1), randn(*k_shape, seed=2), randn(k_shape[3], seed=3)
    x_pad = pad(x, padding, padding, padding, padding)
    # report: y[n, i, j, o] = b_o + sum_{p, q, c} x_pad[n, s i + p, s j + q, c] K[p, q, c, o]
    y = correlate(x_pad, kernel, stride) + bias
    np.testing.assert_allclose(conv2d(x, kernel, stride, padding, bias), y, rtol=1e-12, atol=1e-12)
    # report: X_col[(n, i, j), (p, q, c)] = x_pad[n, s i + p, s j + q, c]
    n, ho, wo = y.shape[:3]
    kh, kw, cin = k_shape[:3]
    cols = im2col(x, kh, kw, stride, padding).reshape(n, ho, wo, kh, kw, cin)
    for p in range(kh):
        for q in range(kw):
            np.testing.assert_array_equal(cols[:, :, :, p, q], offset_slice(x_pad, p, q, stride, ho, wo))


@pytest.mark.parametrize("x_shape, k_shape, stride, padding", CONV_CASES)
def test_kernel_and_bias_gradients_are_the_sums_over_outputs(x_shape, k_shape, stride, padding):
    x, kernel = randn(*x_shape, seed=4), randn(*k_shape, seed=5)
    x_pad = pad(x, padding, padding, padding, padding)
    kh, kw = k_shape[:2]
    ho, wo = (x_pad.shape[1] - kh) // stride + 1, (x_pad.shape[2] - kw) // stride + 1
    dy = randn(x_shape[0], ho, wo, k_shape[3], seed=6)
    # report: dK[p, q, c, o] = sum_{n, i, j} x_pad[n, s i + p, s j + q, c] dy[n, i, j, o];  db_o = sum dy
    dk = np.stack(
        [
            np.stack(
                [np.einsum("nijc,nijo->co", offset_slice(x_pad, p, q, stride, ho, wo), dy) for q in range(kw)]
            )
            for p in range(kh)
        ]
    )
    db = dy.sum(axis=(0, 1, 2))
    _, code_dk, code_db = conv2d_backward(dy, x, kernel, stride, padding)
    np.testing.assert_allclose(code_dk, dk, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(code_db, db, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, k_shape, stride, padding", [c for c in CONV_CASES if c[2] == 1])
def test_stride1_dx_is_the_full_correlation_with_the_flipped_kernel(x_shape, k_shape, stride, padding):
    x, kernel = randn(*x_shape, seed=7), randn(*k_shape, seed=8)
    n, h, w, _ = x_shape
    kh, kw = k_shape[:2]
    dy = randn(n, h + 2 * padding - kh + 1, w + 2 * padding - kw + 1, k_shape[3], seed=9)
    code_dx = conv2d_backward(dy, x, kernel, stride, padding)[0]
    # report: dx_pad = full correlation of dy with K~ (N, H + 2P, W + 2P, C_in); dx = dx_pad cropped by P
    dx_pad = full_correlation_with_flipped_kernel(dy, kernel)
    assert dx_pad.shape == (n, h + 2 * padding, w + 2 * padding, x_shape[3])
    np.testing.assert_allclose(code_dx, dx_pad[:, padding : padding + h, padding : padding + w], rtol=1e-12)
    # report: equivalently, the correlation with K~ of dy padded by kh - 1 - P rows and kw - 1 - P columns
    rows, cols = kh - 1 - padding, kw - 1 - padding
    np.testing.assert_allclose(
        code_dx, correlate(pad(dy, rows, rows, cols, cols), flipped(kernel)), rtol=1e-12
    )
    # the flip matters: the same correlation with the kernel only channel-transposed is another array
    unflipped = correlate(pad(dy, rows, rows, cols, cols), kernel.transpose(0, 1, 3, 2))
    assert not np.allclose(code_dx, unflipped)


@pytest.mark.parametrize("x_shape, k_shape, stride, padding", [c for c in CONV_CASES if c[2] > 1])
def test_strided_dx_is_the_full_correlation_of_the_dilated_dy(x_shape, k_shape, stride, padding):
    x, kernel = randn(*x_shape, seed=10), randn(*k_shape, seed=11)
    n, h, w, _ = x_shape
    kh, kw, _, cout = k_shape
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    dy = randn(n, ho, wo, cout, seed=12)
    # report: dy^(s)[n, s i, s j, o] = dy[n, i, j, o], s - 1 zeros between neighbours
    dilated = np.zeros((n, stride * (ho - 1) + 1, stride * (wo - 1) + 1, cout))
    dilated[:, ::stride, ::stride] = dy
    full = full_correlation_with_flipped_kernel(dilated, kernel)  # (N, s(Ho - 1) + kh, s(Wo - 1) + kw, C_in)
    # report: the last (H + 2P - kh) mod s rows (and columns) of x_pad are read by no window: append zeros
    unread_rows, unread_cols = (h + 2 * padding - kh) % stride, (w + 2 * padding - kw) % stride
    assert unread_rows + unread_cols > 0  # each case exercises the appended zeros
    dx_pad = pad(full, 0, unread_rows, 0, unread_cols)
    assert dx_pad.shape[1:3] == (h + 2 * padding, w + 2 * padding)
    code_dx = conv2d_backward(dy, x, kernel, stride, padding)[0]
    np.testing.assert_allclose(code_dx, dx_pad[:, padding : padding + h, padding : padding + w], rtol=1e-12)


# ---- the matrix form: col2im is im2col's adjoint


@pytest.mark.parametrize(
    "x_shape, kh, kw, stride, padding",
    [
        ((2, 7, 6, 3), 3, 3, 1, 1),
        ((2, 6, 7, 3), 2, 3, 1, 0),
        ((2, 8, 7, 3), 3, 3, 2, 1),
        ((1, 9, 8, 2), 2, 3, 3, 2),
    ],
)
def test_col2im_is_the_adjoint_of_im2col(x_shape, kh, kw, stride, padding):
    x = randn(*x_shape, seed=13)
    cols = im2col(x, kh, kw, stride, padding)
    c = randn(*cols.shape, seed=14)
    # report: <im2col(x), C> = <x, col2im(C)> for every x and C
    assert np.sum(cols * c) == pytest.approx(
        np.sum(x * col2im(c, x_shape, kh, kw, stride, padding)), rel=1e-12
    )


# ---- max-pooling: the gradient goes to the first argmax


def route_to_first_argmax(x, dy, size, stride):
    """The report's rule, window by window: dx[n, s i + p*, s j + q*, c] += dy[n, i, j, c] with (p*, q*) the first
    maximum of the window in row-major order, 0 elsewhere."""
    dx = np.zeros_like(x)
    for n, i, j, c in np.ndindex(dy.shape):
        window = x[n, stride * i : stride * i + size, stride * j : stride * j + size, c]
        p, q = next((p, q) for p, q in np.ndindex(size, size) if window[p, q] == window.max())
        dx[n, stride * i + p, stride * j + q, c] += dy[n, i, j, c]
    return dx


def windows_with_ties(x, size, stride, ho, wo):
    """How many windows have their maximum more than once."""
    return sum(
        np.sum(window == window.max()) > 1
        for n, i, j, c in np.ndindex(x.shape[0], ho, wo, x.shape[3])
        for window in [x[n, stride * i : stride * i + size, stride * j : stride * j + size, c]]
    )


@pytest.mark.parametrize("size, stride", [(2, 2), (3, 2), (2, 1), (3, 3)])
def test_maxpool_routes_dy_to_the_first_argmax_ties_included(size, stride):
    # small integers after a ReLU: many windows hold their maximum twice or more, whole windows are 0
    x = np.maximum(np.random.default_rng(15).integers(-1, 3, (2, 7, 8, 3)), 0).astype(np.float64)
    out, cache = maxpool2d(x, size, stride)
    dy = randn(*out.shape, seed=16)
    assert windows_with_ties(x, size, stride, *out.shape[1:3]) > out.size // 4
    expected = route_to_first_argmax(x, dy, size, stride)
    np.testing.assert_allclose(maxpool2d_backward(dy, cache), expected, rtol=1e-12, atol=1e-14)
    if (size, stride) == (2, 2):  # report: the tournament routes to the same pixel
        tournament_out, tournament_cache = maxpool2x2(x)
        np.testing.assert_array_equal(tournament_out, out)
        np.testing.assert_array_equal(maxpool2x2_backward(dy, tournament_cache), expected)


# ---- the report quotes code that exists


def test_the_report_quotes_code_that_stands_in_the_function_it_names():
    quotes = quoted_code(REPORT.read_text())
    assert len(quotes) >= 20, "the derivation section quotes code as `file` `function`: `code`"
    missing = missing_quotes(quotes)
    assert not missing, "REPORT.md quotes code that is not (or no longer) there:\n" + "\n".join(missing)
