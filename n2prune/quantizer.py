"""Weight quantizers for cells (``cell.quantizer = PruneCell(...)``), as N2D2's ``n2d2.quantizer``."""

from n2prune.prune.prune_cell import PruneCell

__all__ = ["PruneCell"]
