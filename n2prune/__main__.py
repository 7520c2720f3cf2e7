"""``python -m n2prune`` is the ``n2prune`` command."""

from n2prune.cli import entry_point

entry_point()
