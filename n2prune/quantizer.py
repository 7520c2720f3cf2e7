"""Weight quantizers for cells (``cell.quantizer = PruneCell(...)``), as N2D2's ``n2d2.quantizer``."""

from n2prune.prune.quantizer import PruneCell

__all__ = ["PruneCell"]
