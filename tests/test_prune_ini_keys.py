"""n2prune's QWeight.* keys and the [Pruning] section: typed, validated at file:line, applied."""

import re

import numpy as np
import pytest

from n2prune import cli
from n2prune.errors import IniError
from n2prune.inspect import check_report
from n2prune.train.model import Model

# conv1 (1 -> 4), conv2 (4 -> 8), fc1 (8*4*4 -> 16), fc2 (16 -> 10) on MNIST.
NET = """
[database]
Type=MNIST_IDX_Database
Validation=0.95

[sp]
SizeX=12
SizeY=12
BatchSize=100

[sp.Transformation_1]
Type=RescaleTransformation
Width=[sp]SizeX
Height=[sp]SizeY

[conv1]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=4
ActivationFunction=Rectifier

[conv2]
Input=conv1
Type=Conv
KernelDims=3 3
Stride=2
NbOutputs=8
ActivationFunction=Rectifier
{conv2}

[fc1]
Input=conv2
Type=Fc
NbOutputs=16
ActivationFunction=Rectifier
{fc1}

[fc2]
Input=fc1
Type=Fc
NbOutputs=10

[softmax]
Input=fc2
Type=Softmax
NbOutputs=10
WithLoss=1

[softmax.Target]
{extra}
"""


def build(tmp_path, conv2="", fc1="", extra=""):
    ini = tmp_path / "net.ini"
    ini.write_text(NET.format(conv2=conv2, fc1=fc1, extra=extra))
    return ini, Model(ini, need_data=False).network


def test_every_key_reaches_the_quantizer(tmp_path):
    keys = """QWeight=Prune
QWeight.PruningMode=Gradual
QWeight.Pattern=Bank
QWeight.BankSize=2
QWeight.BankInterleave=2
QWeight.Criterion=L2
QWeight.Schedule=Exp
QWeight.ScheduleDelay=300
QWeight.ScheduleLength=1200
QWeight.StartThreshold=0
QWeight.Threshold=0.75
QWeight.StepSizeThreshold=200
QWeight.Scope=Layer
QWeight.MinSparsity=0.1
QWeight.MaxSparsity=0.9
QWeight.RestoreSparsity=1
"""
    _, network = build(tmp_path, conv2=keys)
    quantizer = network.cell("conv2").quantizer
    options, params = quantizer.options, quantizer.params
    assert (options.pattern, params.bank_size, params.bank_interleave) == ("Bank", 2, 2)
    assert (options.criterion, options.schedule) == ("L2", "Exp")
    assert (options.schedule_delay, options.schedule_length) == (300, 1200)
    assert (options.min_sparsity, options.max_sparsity, options.restore_sparsity) == (0.1, 0.9, True)
    assert quantizer.schedule.total == 6


@pytest.mark.parametrize("keys, blamed, message", [
    ("QWeight.Pattern=NN", "QWeight.Pattern", "expected one of"),
    ("QWeight.Pattern=NM\nQWeight.N=5", "QWeight.N", "N=5 > M=4"),
    ("QWeight.Pattern=Bank\nQWeight.BankSize=3", "QWeight.BankSize", "does not divide"),
    ("QWeight.Pattern=Unstructured\nQWeight.Criterion=FPGM", "QWeight.Criterion",
     "needs pattern Channel"),
    ("QWeight.Scope=Global", "QWeight.Scope", "needs a pattern"),
    ("QWeight.Pattern=Unstructured\nQWeight.MinSparsity=0.8\nQWeight.MaxSparsity=0.5",
     "QWeight.MinSparsity", "above max_sparsity"),
    ("QWeight.Schedule=Cubicc", "QWeight.Schedule", "expected one of"),
])
def test_bad_values_name_the_line_of_the_key(tmp_path, keys, blamed, message):
    with pytest.raises(IniError, match=message) as info:
        build(tmp_path, conv2="QWeight=Prune\nQWeight.PruningMode=Static\n" + keys)
    text = str(info.value)
    line = int(re.match(r".*net\.ini:(\d+) ", text).group(1))
    written = (tmp_path / "net.ini").read_text().splitlines()[line - 1]
    assert written.startswith(blamed + "="), (text, written)


PRUNING = """
[Pruning]
QWeight.PruningMode=Static
QWeight.Pattern=NM
QWeight.Threshold=0.5
"""


def pruned_names(network):
    return [c.name for c in network.cells if getattr(c, "quantizer", None) is not None]


def test_pruning_section_skips_the_first_conv_and_the_classifier(tmp_path):
    _, network = build(tmp_path, extra=PRUNING)
    assert pruned_names(network) == ["conv2", "fc1"]
    assert network.cell("fc1").quantizer.sparsity() == 0.5


def test_pruning_section_cells_exclusions_and_overrides(tmp_path):
    _, network = build(tmp_path, extra=PRUNING + "Exclude=None\n")
    assert pruned_names(network) == ["conv1", "conv2", "fc1", "fc2"]
    _, network = build(tmp_path, extra=PRUNING + "Cells=fc2 conv1\n")
    assert pruned_names(network) == ["conv1", "fc2"]
    with pytest.raises(IniError, match=r"\[fc1\], which has no QWeight="):
        build(tmp_path, extra=PRUNING + "Cells=fc2 conv1\n", fc1="QWeight.N=1")
    _, network = build(tmp_path, extra=PRUNING, fc1="QWeight.N=1")
    assert network.cell("fc1").quantizer.sparsity() == 0.75  # the cell's own key wins


def test_pruning_section_errors(tmp_path):
    with pytest.raises(IniError, match=r"net\.ini:\d+ \[Pruning\] Cells: unknown cell fc3; "
                                       "did you mean fc2\\? known: conv1, conv2, fc1, fc2"):
        build(tmp_path, extra=PRUNING + "Cells=fc3\n")
    with pytest.raises(IniError, match=r"\[softmax\] is a Softmax cell"):
        build(tmp_path, extra=PRUNING + "Cells=softmax\n")
    with pytest.raises(IniError, match="unknown Prune parameter QWeight.Patern; did you mean "
                                       "QWeight.Pattern"):
        build(tmp_path, extra=PRUNING + "QWeight.Patern=NM\n")


def test_inspect_check_passes_a_trained_run_and_flags_a_broken_mask(tmp_path, capsys):
    ini = tmp_path / "net.ini"
    ini.write_text(NET.format(conv2="", fc1="", extra=PRUNING.replace("NM", "RowBalanced")))
    run = tmp_path / "run"
    assert cli.main(["train", str(ini), "--steps", "5", "--out", str(run)]) == 0
    capsys.readouterr()
    assert cli.main(["inspect", str(run), "--check"]) == 0
    out = capsys.readouterr().out
    assert "check [conv2]: ok" in out and "check [fc1]: ok" in out
    network = Model(ini, need_data=False).network
    mask = network.cell("fc1").quantizer.masks[0]
    mask[0, np.flatnonzero(mask[0] == 0)[0]] = 1  # row 0 now keeps one more
    report = check_report(network)
    assert report["conv2"] == [] and len(report["fc1"]) == 1


def test_the_key_table_takes_defaults_from_the_constructors_and_names_from_the_registries():
    import inspect

    from n2prune.prune.options import PruneOptions
    from n2prune.prune.pattern_base import PatternParams
    from n2prune.prune.prune_cell import PruneCell
    from n2prune.prune.prune_keys import PRUNE_KEYS
    from n2prune.prune.schedules import SCHEDULES
    assert PRUNE_KEYS["Threshold"].default == inspect.signature(PruneCell).parameters[
        "threshold"].default == 0.2
    assert PRUNE_KEYS["Schedule"].default == PruneOptions().schedule == "Gamma"
    assert PRUNE_KEYS["BankInterleave"].default == PatternParams().bank_interleave == 1
    quantizer = PruneCell(**PRUNE_KEYS.defaults())
    assert quantizer.options == PruneOptions() and quantizer.params == PatternParams()
    assert PRUNE_KEYS["Schedule"].kind.names() == tuple(SCHEDULES)
