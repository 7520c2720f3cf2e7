"""Solvers that update a cell's params after each batch (N2D2 ``Solvers=``)."""

from n2prune.solvers.lr_policy import LR_POLICIES, learning_rate
from n2prune.solvers.sgd import SGD, parse_clamping

# N2D2 solver names -> classes (Adam is not implemented).
SOLVERS = {"SGD": SGD}

__all__ = ["LR_POLICIES", "SGD", "SOLVERS", "learning_rate", "parse_clamping"]
