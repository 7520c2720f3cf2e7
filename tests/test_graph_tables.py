"""The INI key tables of graph/ match the constructors they feed."""

import inspect

from n2prune.graph.tables import SGD_KEYS
from n2prune.solvers import SGD


def test_sgd_keys_are_sgd_kwargs_with_n2d2_defaults():
    params = inspect.signature(SGD).parameters
    for key, (kwarg, _reader, default) in SGD_KEYS.items():
        assert kwarg in params, key
        assert params[kwarg].default == default, key
