"""n2prune: N2D2-style INI networks, trained and pruned with skip kernels."""

__version__ = "0.1.0"
