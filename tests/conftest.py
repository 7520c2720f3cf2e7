"""Imported first by pytest: n2prune sets OpenBLAS's thread timeout before numpy loads."""

import n2prune  # noqa: F401
