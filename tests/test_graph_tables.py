"""The INI key tables of graph/ match the constructors they feed."""

import inspect

import pytest

from n2prune.cells import activations, fillers
from n2prune.graph.tables import ACTIVATION_KEYS, FILLER_KEYS, SGD_KEYS
from n2prune.solvers import SGD


@pytest.mark.parametrize("table, registry", [(ACTIVATION_KEYS, activations.ACTIVATIONS),
                                             (FILLER_KEYS, fillers.FILLERS)])
def test_every_registered_object_has_its_keys_declared(table, registry):
    assert set(table) == set(registry)
    for name, keys in table.items():
        params = inspect.signature(registry[name]).parameters
        assert {kwarg for kwarg, _reader, _default in keys.values()} <= set(params), name


def test_sgd_keys_are_sgd_kwargs_with_n2d2_defaults():
    params = inspect.signature(SGD).parameters
    for key, (kwarg, _reader, default) in SGD_KEYS.items():
        assert kwarg in params, key
        assert params[kwarg].default == default, key
