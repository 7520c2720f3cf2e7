"""``twins.serial_and_parallel``: two compilations of one loop, each cached as itself."""

import os
import subprocess
import sys
import textwrap

import numpy as np
from paths import ROOT

from n2prune.kernels.direct_conv import _forward
from n2prune.kernels.twins import Twins

# A module whose loop records which thread ran each item: the serial
# compilation runs them all on the calling thread (id 0).
THREAD_IDS = '''
import numba
import numpy as np
from n2prune.kernels.twins import serial_and_parallel

@serial_and_parallel
def thread_ids(out):
    for i in numba.prange(out.shape[0]):
        out[i] = numba.get_thread_id()

def run(parallel):
    out = np.zeros(1000, np.int64)
    thread_ids.pick(parallel)(out)
    return int(out.max())

# Parallel first: a serial numba.get_thread_id() read from the cache crashes
# a process whose thread pool has not started.
parallel = run(True)
print(run(False), parallel, thread_ids.serial.stats.cache_hits.total(),
      thread_ids.parallel.stats.cache_hits.total())
'''


def test_pick_returns_the_named_compilation():
    assert isinstance(_forward, Twins)
    assert _forward.pick(True) is _forward.parallel
    assert _forward.pick(False) is _forward.serial
    assert _forward.parallel.targetoptions.get("parallel") is True
    assert not _forward.serial.targetoptions.get("parallel")


def test_each_compilation_reads_back_its_own_cache(tmp_path):
    """numba's cache keys an entry by name and line, not by flags: were the
    two compilations one function, the second process would read one
    compilation's code for both, and the serial loop would use two threads."""
    (tmp_path / "threaded.py").write_text(textwrap.dedent(THREAD_IDS))
    # workqueue splits the range evenly over the threads; TBB (chosen where libtbb
    # is installed) may run 1,000 tiny items on one thread, hiding the difference.
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", "PYTHONPATH": f"{tmp_path}:{ROOT}",
           "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_THREADING_LAYER": "workqueue"}
    runs = [subprocess.run([sys.executable, "-c", "import threaded"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.split()
            for _ in range(2)]
    assert runs[0] == ["0", "1", "0", "0"]      # compiled: serial on one thread
    assert runs[1] == ["0", "1", "1", "1"]      # read back from the cache, unchanged


def test_serial_and_parallel_forward_are_bit_identical():
    from n2prune.kernels.direct_conv import compress, geometry_tuple
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 9, 9, 5)).astype(np.float32)
    kept = compress(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    arrays = (kept.ptr, kept.minor, kept.ky, kept.kx, kept.values)
    geo = geometry_tuple(3, (1, 1), (1, 1), (1, 1), (9, 9), (9, 9), 5)
    bias = rng.standard_normal(4).astype(np.float32)
    outputs = [np.full(4 * 9 * 9 * 5, np.nan, np.float32) for _ in range(2)]
    for run, out in zip(_forward, outputs):
        run(x.reshape(-1), arrays, geo, bias, True, out)
    np.testing.assert_array_equal(outputs[0], outputs[1])
