import numpy as np

from shared.gradient_check import gradient_check, numerical_gradient, rel_error
from shared.nn import Linear, ReLU, softmax_cross_entropy


class LinearForgetsTranspose(Linear):
    """A deliberately wrong backward: dW uses grad^T x reshaped instead of x^T grad."""

    def backward(self, grad):
        dx = super().backward(grad)
        self.grads["W"] = (grad.T @ self.x).T[::-1]
        return dx


class ReLUWrongAtZero(ReLU):
    """Passes the gradient where x < 0 too: wrong."""

    def backward(self, grad):
        return grad


def test_passes_a_correct_layer():
    rng = np.random.default_rng(0)
    errors = gradient_check(Linear(5, 4, rng=rng), rng.standard_normal((3, 5)))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < 1e-7


def test_catches_a_wrong_weight_gradient():
    rng = np.random.default_rng(0)
    errors = gradient_check(LinearForgetsTranspose(4, 4, rng=rng), rng.standard_normal((3, 4)))
    assert errors["W"] > 1e-2 and errors["x"] < 1e-7


def test_catches_a_wrong_input_gradient():
    x = np.random.default_rng(1).standard_normal((4, 6))
    assert gradient_check(ReLU(), x)["x"] < 1e-7
    assert gradient_check(ReLUWrongAtZero(), x)["x"] > 1e-2


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(2)
    logits, y = rng.standard_normal((5, 7)), rng.integers(0, 7, 5)
    _, analytic = softmax_cross_entropy(logits, y)
    numeric = numerical_gradient(lambda: softmax_cross_entropy(logits, y)[0], logits)
    assert rel_error(analytic, numeric) < 1e-7


def test_curriculum_signature_and_float32_layers_are_checked_in_float64():
    layer = Linear(3, 2, rng=np.random.default_rng(0), dtype=np.float32)
    errors = gradient_check(layer, np.ones((2, 3), dtype=np.float32), epsilon=1e-5)
    assert max(errors.values()) < 1e-7
    assert layer.params["W"].dtype == np.float32, "the checked layer itself is left as it was"
