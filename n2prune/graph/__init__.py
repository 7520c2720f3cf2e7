"""From parsed INI sections to a network of cells (the only package that knows INI keys)."""
