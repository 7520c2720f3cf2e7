"""Pruning: the prune quantizer (N2D2's QWeight=Prune), its mask algorithms, network views."""
