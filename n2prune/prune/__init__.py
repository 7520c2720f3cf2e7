"""Pruning: the prune quantizer (N2D2's QWeight=Prune), its parts and network views."""

from n2prune.prune.mask_methods import PRUNING_FILLERS, iter_nonstruct, random_fill
from n2prune.prune.prune_cell import PruneCell

__all__ = ["PRUNING_FILLERS", "PruneCell", "iter_nonstruct", "random_fill"]
