"""Files a run reads and writes: atomic writes, snapshots, N2D2 weight files."""
