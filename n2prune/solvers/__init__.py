"""Solvers that update a cell's params after each batch (N2D2 ``Solvers=``).

``SOLVERS`` maps N2D2's solver names to classes (only SGD: Adam is not
implemented); each declares its INI keys beside its constructor.
"""

from n2prune.solvers.lr_policy import LR_POLICIES, policy_rate
from n2prune.solvers.sgd import SGD, SOLVERS, parse_clamping

__all__ = ["LR_POLICIES", "SGD", "SOLVERS", "parse_clamping", "policy_rate"]
