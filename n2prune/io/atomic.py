"""Write files so that a crash or Ctrl-C never leaves a half-written one.

The data go to a temporary file in the same folder, are flushed to disk, and
the temporary file is renamed over the target (``os.replace`` is atomic on
POSIX within one file system). A process killed outright (SIGKILL, power
loss) can still leave the temporary behind: ``remove_orphan_temps`` clears
them when the folder is next used.
"""

import contextlib
import os
import re
import tempfile
from pathlib import Path

# ``.<target name>.<8 random characters from mkstemp>.tmp``
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def _umask():
    # os.umask can only be read by setting it; put it back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path, mode="w"):
    """Open a temporary sibling of ``path``; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; the target gets the mode open() would give
        # it, so every file of a folder follows the user's umask alike.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    with atomic_open(path, "w") as handle:
        handle.write(text)


def remove_orphan_temps(folder):
    """Delete the temporaries ``atomic_open`` left in ``folder`` and its subfolders."""
    folder = Path(folder)
    for path in [*folder.glob(".*.tmp"), *folder.glob("*/.*.tmp")]:
        if _TEMP_NAME.match(path.name) and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
