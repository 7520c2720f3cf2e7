import numpy as np
import pytest
from gradcheck import check_activation

from n2prune.cells import activations as act


def _x(seed=0):
    # Away from kinks (|x| < 1e-3) and clip points, so finite differences are clean.
    x = np.random.default_rng(seed).uniform(-3, 3, size=(3, 2, 4, 5))
    x[np.abs(x) < 1e-3] += 0.01
    return x


@pytest.mark.parametrize("activation", [
    act.Rectifier(), act.Rectifier(leak_slope=0.1), act.Rectifier(clipping=1.5),
    act.Linear(), act.Linear(clipping=2.0), act.Tanh(), act.Tanh(alpha=0.5),
    act.TanhLeCun(), act.Saturation(), act.Saturation(threshold=2.5),
    act.Logistic(), act.Softplus(), act.Swish(),
], ids=lambda a: type(a).__name__)
def test_gradients(activation):
    x = _x()
    x[np.isclose(np.abs(x), 1.5, atol=1e-4) | np.isclose(np.abs(x), 2.0, atol=1e-4)] += 0.01
    check_activation(activation, x, np.random.default_rng(1))


def test_formulas():
    x = np.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_allclose(act.Rectifier(0.1, 1.0).forward(x), [-0.2, -0.05, 0.5, 1.0])
    np.testing.assert_allclose(act.Linear(clipping=1.0).forward(x), [-1, -0.5, 0.5, 1])
    np.testing.assert_allclose(act.Saturation(1.0).forward(x), [-1, -0.5, 0.5, 1])
    np.testing.assert_allclose(act.Tanh(2.0).forward(x), np.tanh(2 * x))
    # N2D2's TanhLeCun is tanh(1.7159 * 2/3 * x), without the outer 1.7159.
    np.testing.assert_allclose(act.TanhLeCun().forward(x), np.tanh(1.7159 * 2 / 3 * x))
    np.testing.assert_allclose(act.Logistic().forward(x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(act.Softplus().forward(x), np.log1p(np.exp(x)))
    np.testing.assert_allclose(act.Swish().forward(x), x / (1 + np.exp(-x)))


def test_clip_points_stop_the_gradient():
    r = act.Rectifier(clipping=1.0)
    r.forward(np.array([0.5, 2.0, -1.0]))
    np.testing.assert_array_equal(r.backward(np.ones(3)), [1, 0, 0])
    s = act.Saturation(1.0)
    s.forward(np.array([0.5, 2.0, -3.0]))
    np.testing.assert_array_equal(s.backward(np.ones(3)), [1, 0, 0])


def test_logistic_with_loss_passes_gradient():
    a = act.LogisticWithLoss()
    y = a.forward(np.array([0.0, 1.0]))
    np.testing.assert_allclose(y, [0.5, 1 / (1 + np.exp(-1))])
    np.testing.assert_array_equal(a.backward(np.array([0.3, -0.2])), [0.3, -0.2])


def test_extreme_inputs_stay_finite():
    x = np.array([-1000.0, 1000.0], np.float32)
    for a in (act.Logistic(), act.Softplus(), act.Swish()):
        y = a.forward(x)
        assert y.dtype == np.float32 and np.all(np.isfinite(y))
        assert np.all(np.isfinite(a.backward(np.ones_like(x))))


def test_float32_preserved():
    x = _x().astype(np.float32)
    for name, cls in act.ACTIVATIONS.items():
        a = cls()
        assert a.forward(x).dtype == np.float32, name
        assert a.backward(np.ones_like(x)).dtype == np.float32, name


def test_registry():
    assert set(act.ACTIVATIONS) == {"Rectifier", "Linear", "Tanh", "TanhLeCun", "Saturation",
                                    "Logistic", "LogisticWithLoss", "Softplus", "Swish"}


def test_resolve():
    assert isinstance(act.resolve(None), act.Linear)
    t = act.Tanh()
    assert act.resolve(t) is t
