"""Central finite-difference gradient checks for cells and activations, in float64.

The scalar checked is ``L = sum(y * r)`` with a fixed random ``r``, so the
analytic gradients are ``backward(r)`` and the parameter ``.grad``s it
writes. Only a random sample of entries of each array is perturbed, to keep
the checks fast; small arrays are checked whole.
"""

import numpy as np

EPS = 1e-6


def to_float64(cell):
    """Cast every parameter of ``cell`` to float64 (cells compute in their params' dtype)."""
    for p in cell.params():
        p.value = p.value.astype(np.float64)
        p.grad = np.zeros_like(p.value)


def _sample(size, rng, nb_samples):
    if size <= nb_samples:
        return np.arange(size)
    return rng.choice(size, nb_samples, replace=False)


def _numeric(loss, array, indices, eps):
    """``dL/d array[i]`` for flat ``indices``, perturbing ``array`` in place."""
    flat = array.reshape(-1)  # a view: the loss sees the perturbation
    grads = []
    for i in indices:
        saved = flat[i]
        flat[i] = saved + eps
        up = loss()
        flat[i] = saved - eps
        down = loss()
        flat[i] = saved
        grads.append((up - down) / (2 * eps))
    return np.array(grads)


def _compare(label, analytic, numeric, rtol, atol):
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol,
                               err_msg=f"gradient of {label}")


def check_cell(cell, xs, rng, train=True, before_forward=None, nb_samples=25,
               eps=EPS, rtol=1e-5, atol=1e-6):
    """Assert ``cell.backward`` matches finite differences for inputs and params.

    ``xs``: the input arrays (cast to float64). ``before_forward``: called
    before every forward (e.g. to reset a dropout generator). Returns the
    analytic input gradients.
    """
    to_float64(cell)
    xs = [np.ascontiguousarray(x, dtype=np.float64) for x in xs]

    def forward():
        if before_forward is not None:
            before_forward()
        return cell.forward(xs, train)

    r = rng.standard_normal(forward().shape)

    def loss():
        return float(np.sum(forward() * r))

    forward()
    dxs = cell.backward(r.copy())
    analytic = {p.name: p.grad.copy() for p in cell.params()}
    for k, (x, dx) in enumerate(zip(xs, dxs)):
        assert dx.shape == x.shape, f"input {k}: dx {dx.shape} != x {x.shape}"
        idx = _sample(x.size, rng, nb_samples)
        _compare(f"input {k}", dx.reshape(-1)[idx], _numeric(loss, x, idx, eps), rtol, atol)
    for p in cell.params():
        idx = _sample(p.value.size, rng, nb_samples)

        def param_loss(p=p):
            p.changed()  # in-place perturbation: drop what the cell derived from the weights
            return loss()

        _compare(p.name, analytic[p.name].reshape(-1)[idx],
                 _numeric(param_loss, p.value, idx, eps), rtol, atol)
    return dxs


def check_activation(activation, x, rng, eps=EPS, rtol=1e-5, atol=1e-6):
    """Assert ``activation.backward`` matches finite differences at every entry of ``x``."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    r = rng.standard_normal(x.shape)

    def loss():
        return float(np.sum(activation.forward(x) * r))

    activation.forward(x)
    dx = activation.backward(r.copy())
    idx = np.arange(x.size)
    _compare(type(activation).__name__, dx.reshape(-1), _numeric(loss, x, idx, eps), rtol, atol)
    return dx
