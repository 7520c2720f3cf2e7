"""graph.sizes: sizes are bounded and memory is estimated before anything is allocated.

Each case goes through ``n2prune.cli.main`` in-process, as a user would, and
must end in one ``error:`` line naming ``file:line [section] Key``, exit code
2, in well under a second or two, without a large allocation (the address
space is capped at its current size + 1 GiB while the command runs).
"""

import contextlib
import re
import resource
import signal
from pathlib import Path

import pytest

from n2prune.cli import main
from n2prune.graph.builder import build_network
from n2prune.graph.sizes import cell_bytes, format_bytes, parse_memory
from n2prune.ini import load_ini
from n2prune.train.model import Model

LENET = Path(__file__).resolve().parents[1] / "models_ini" / "lenet.ini"

BASE = """\
[sp]
SizeX=8
SizeY=8
NbChannels=2
BatchSize=4

[c]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=4

[fc]
Input=c
Type=Fc
NbOutputs=3

[fc.Target]
"""


@pytest.fixture
def capped():
    """Cap this process's address space at its current size + 1 GiB for the test."""
    status = Path("/proc/self/status")
    match = re.search(r"VmSize:\s+(\d+) kB", status.read_text()) if status.exists() else None
    if match is None:
        pytest.skip("no /proc/self/status to read the address space size from")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = int(match[1]) * 1024 + 2**30
    if hard != resource.RLIM_INFINITY and cap > hard:
        pytest.skip("the hard address-space limit is already lower")
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextlib.contextmanager
def time_limit(seconds):
    """TimeoutError if the block runs longer than ``seconds`` (a hang fails, not waits)."""
    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def edit(text, section, key, value):
    """``text`` with ``key=value`` set in ``[section]`` (replaced or appended)."""
    head, body = text.split(f"[{section}]\n", 1)
    lines = [line for line in body.split("\n") if not line.startswith(f"{key}=")]
    return f"{head}[{section}]\n{key}={value}\n" + "\n".join(lines)


def line_of(text, section, key):
    """1-based line of ``key=`` in ``[section]``."""
    lines = text.splitlines()
    start = lines.index(f"[{section}]")
    return next(n for n, line in enumerate(lines[start:], start + 1) if line.startswith(f"{key}="))


def one_line_error(capsys, argv, path, line, key):
    """Run the CLI; check it printed one error line at ``path:line`` naming ``key``."""
    with time_limit(10):
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {path}:{line} ") and f" {key}:" in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("section, key, value", [
    ("fc", "NbOutputs", "1000000000"),  # 477 GiB of weights
    ("c", "NbOutputs", "1000000000"),
    ("c", "PaddingDims", "60000 60000"),  # outputs and im2col columns
    ("sp", "BatchSize", "100000000"),
])
def test_oversized_network_is_refused_before_allocating(tmp_path, capsys, capped,
                                                         section, key, value):
    text = edit(BASE, section, key, value)
    path = tmp_path / "m.ini"
    path.write_text(text)
    message = one_line_error(capsys, ["check", str(path)], path, line_of(text, section, key), key)
    assert "--max-memory" in message and "to train" in message


def test_conv_whose_im2col_dominates_is_refused_at_its_kernel(tmp_path, capsys):
    text = edit(BASE, "c", "NbOutputs", "1")  # 18 taps per output: the columns dominate
    path = tmp_path / "m.ini"
    path.write_text(text)
    one_line_error(capsys, ["check", str(path), "--max-memory", "10K"], path,
                   line_of(text, "c", "KernelDims"), "KernelDims")


def test_huge_padding_cell_is_refused_at_its_padding_key(tmp_path, capsys, capped):
    text = BASE.replace("[fc]\nInput=c", "[pad]\nInput=c\nType=Padding\nNbOutputs=4\n"
                        "TopPadding=1\nLeftPadding=2000000000\n\n[fc]\nInput=pad")
    path = tmp_path / "m.ini"
    path.write_text(text)
    one_line_error(capsys, ["check", str(path)], path, line_of(text, "pad", "LeftPadding"), "LeftPadding")


RESCALE = """\
[sp.Transformation_1]
Type=RescaleTransformation
Width=100000000
Height=8
"""


@pytest.mark.parametrize("verb", ["check", "train", "test"])
def test_huge_rescale_is_refused_by_every_verb_before_the_data_path(tmp_path, capsys, capped,
                                                                     verb):
    # check used to accept it, and train reached 3.6 GB before a traceback.
    text = BASE.replace("[c]\n", RESCALE + "\n[c]\n")
    path = tmp_path / "m.ini"
    path.write_text(text)
    extra = {"check": [], "train": ["--out", str(tmp_path / "run")],
             "test": ["--weights", str(tmp_path)]}[verb]
    one_line_error(capsys, [verb, str(path), *extra], path, line_of(text, "sp.Transformation_1", "Width"), "Width")
    assert not (tmp_path / "run").exists()


def test_check_refuses_what_train_could_not_start(tmp_path, capsys):
    model = Model(LENET, seed=1, max_memory=2**40)
    needed = model.budget.total
    assert main(["check", str(LENET), "--max-memory", str(needed)]) == 0
    capsys.readouterr()
    assert main(["check", str(LENET), "--max-memory", str(needed - 1)]) == 2
    assert f"more than --max-memory {format_bytes(needed - 1)}" in capsys.readouterr().err


@pytest.mark.parametrize("keys", [
    "Mapping.Size=100000",
    "Mapping.NbIterations=1000000000",
    "Mapping.SizeX=2\nMapping.StrideY=7\nMapping.OffsetX=2000000000\nMapping.NbIterations=4000000000",
])
def test_mapping_generator_values_do_not_spin(tmp_path, keys):
    path = tmp_path / "m.ini"
    path.write_text(BASE.replace("NbOutputs=4\n", f"NbOutputs=4\n{keys}\n", 1))
    with time_limit(2):
        network, _, _ = build_network(load_ini(path), 0, 1)
    mapping = network.cell("c").connections[0].mask
    assert mapping is None or mapping.shape == (4, 2, 1, 1)


@pytest.mark.parametrize("section, key, value, message", [
    ("fc", "NbOutputs", "1" * 400, "integer out of range"),  # used to overflow into a numpy error
    ("c", "NbOutputs", "4294967296", "integer out of range"),  # 2^32: N2D2's unsigned int
    ("fc.Target", "TargetValue", "9" * 400, "number out of range"),  # used to become inf
    ("c", "NbOutputs", "0", "must be at least 1"),
    ("c", "NbOutputs", "-5", "non-negative"),
    ("c", "KernelDims", "0 3", "must be at least 1"),
    ("c", "StrideDims", "1 0", "must be at least 1"),
], ids=["400-digit int", "2^32", "400-digit float", "zero", "negative", "zero kernel",
        "zero stride"])
def test_out_of_range_sizes_name_their_key(tmp_path, capsys, section, key, value, message):
    text = edit(BASE, section, key, value)
    path = tmp_path / "m.ini"
    path.write_text(text)
    error = one_line_error(capsys, ["check", str(path)], path, line_of(text, section, key), key)
    assert message in error and len(error) < 300


def test_lenet_estimate_covers_its_cells_and_data():
    budget = Model(LENET, seed=1).budget
    assert set(budget.items) >= {"sp", "data", "conv1", "fc2"}
    # Measured: 254 MiB estimated, 275 MiB traced numpy peak for 30 steps.
    assert 150 * 2**20 < budget.total < 400 * 2**20


def test_cell_bytes_is_exact_python_arithmetic():
    assert cell_bytes(10, (2, 3, 4), 5, workspace=7, connections=3) == 4 * (4 * 10 + 5 * (
        3 * 24 + 2 * 7)) + 16 * 3
    assert cell_bytes(10**18, (1, 1, 1), 1) == 16 * 10**18 + 12  # beyond int64: no overflow


@pytest.mark.parametrize("text, expected", [
    ("8G", 8 * 2**30), ("512M", 512 * 2**20), ("1.5GiB", 3 * 2**29), ("1000", 1000), ("2k", 2048),
])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "8X", "-1G", "0", "G"])
def test_parse_memory_refuses(text):
    with pytest.raises(ValueError, match="expected a size"):
        parse_memory(text)


def test_bad_max_memory_is_a_usage_error(capsys):
    assert main(["check", str(LENET), "--max-memory", "lots"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: argument --max-memory")


def test_upsampling_deconv_is_refused_at_its_stride(tmp_path, capsys, capped):
    """A Deconv's outputs grow with its stride: 8x8 at stride 100000 is 700k x 700k."""
    text = BASE.replace("[fc]\nInput=c", "[up]\nInput=c\nType=Deconv\nKernelDims=3 3\n"
                        "NbOutputs=4\nStride=100000\n\n[fc]\nInput=up")
    path = tmp_path / "m.ini"
    path.write_text(text)
    one_line_error(capsys, ["check", str(path)], path, line_of(text, "up", "Stride"), "Stride")
