"""Parameters and MACs dense, effective (non-zero weights) and shrunk, as check and inspect show."""

import json

import numpy as np
from channel_net import channel_net, channel_net_text

from n2prune import cli
from n2prune.graph.builder import build_network
from n2prune.ini import parse_ini_text
from n2prune.prune.costs import cell_costs, n2d2_synapses, totals
from n2prune.prune.pruned_cells import initialize_masks


def costs(threshold):
    network = channel_net(threshold=threshold)
    initialize_masks(network, np.random.default_rng(0), 0)
    return {r["cell"]: r for r in cell_costs(network)}


def test_nothing_removed_costs_the_dense_network():
    for row in costs(0.0).values():
        assert row["macs_shrunk"] == row["macs_dense"] and row["params_shrunk"] == row["params_dense"]


def test_removed_channels_shrink_both_sides_of_a_cell():
    rows = costs(0.5)
    # cat: 6 -> 3 outputs, inputs 8 + 4 -> 4 + 2, 3x3 kernels on 8x8
    assert rows["cat"]["macs_dense"] == 6 * 12 * 9 * 64
    assert rows["cat"]["macs_shrunk"] == 3 * 6 * 9 * 64
    assert rows["cat"]["params_shrunk"] == 3 * 6 * 9 + 3  # weights and biases
    assert rows["cat"]["macs_effective"] == 3 * 12 * 9 * 64  # masked rows only
    assert rows["dw"]["macs_shrunk"] == 4 * 9 * 64  # depthwise: one kernel per channel
    assert rows["fc"]["macs_shrunk"] == 10 * 3 * 16  # 3 of 6 pooled channels of 4x4
    assert rows["bn"]["params_shrunk"] == 2 * 4
    assert rows["pool"]["macs_shrunk"] == 3 * 4 * 16


def test_totals_and_ratios():
    rows = list(costs(0.5).values())
    total = totals(rows)
    assert total["macs_shrunk"] == sum(r["macs_shrunk"] for r in rows)
    assert total["macs_shrunk_ratio"] == total["macs_shrunk"] / total["macs_dense"] < 0.5


def test_check_json_gives_the_three_counts(tmp_path, capsys):
    ini = tmp_path / "net.ini"
    ini.write_text(channel_net_text(threshold=0.5))
    assert cli.main(["check", str(ini), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    cat = next(r for r in report["cells"] if r["cell"] == "cat")
    assert cat["macs_shrunk"] == 3 * 6 * 9 * 64 and cat["inputs"] == ["add", "c3"]
    assert report["total"]["macs_shrunk"] < report["total"]["macs_effective"] < report["total"]["macs_dense"]


DECONV_NET = """[sp]
SizeX=6
SizeY=6
[c1]
Input=sp
Type=Conv
KernelDims=3 3
Stride=2
NbOutputs=6
{prune}
[up]
Input=c1
Type=Deconv
KernelDims=3 3
Stride=2
NbOutputs=8
{prune}
[fc]
Input=up
Type=Fc
NbOutputs=10
[fc.Target]
"""


def test_a_deconv_pays_its_kernels_at_every_input_pixel():
    prune = "QWeight=Prune\nQWeight.PruningMode=Static\nQWeight.Pattern=Channel\nQWeight.Threshold=0.5"
    network, _, _ = build_network(parse_ini_text(DECONV_NET.format(prune=prune)), seed=0)
    initialize_masks(network, np.random.default_rng(0), 0)
    row = {r["cell"]: r for r in cell_costs(network)}["up"]
    # 6 -> 2x2 after c1; the Deconv scatters 8x6 3x3 kernels from each of the 4 input pixels
    assert network.cell("up").output_shape == (8, 5, 5)
    assert row["macs_dense"] == 8 * 6 * 9 * 4
    assert row["macs_effective"] == 4 * 6 * 9 * 4  # 4 output channels masked
    assert row["macs_shrunk"] == 4 * 3 * 9 * 4     # and 3 of c1's 6 channels removed
    assert row["params_shrunk"] == 4 * 3 * 9 + 4


def test_n2d2_synapses_are_the_connected_weights_and_biases(capsys):
    """N2D2's count (its stats.log): LeNet-5's connected kernels (the conv2 table
    leaves 60 of 96) and biases, the non-zero parameters of a fresh LeNet; pruning
    does not change it, as N2D2 counts connections, not values."""
    from paths import MODELS_INI

    from n2prune.train.model import Model
    network = Model(MODELS_INI / "lenet.ini", need_data=False).network
    fresh = n2d2_synapses(network)
    weighted = [c for c in network.cells if hasattr(c, "weights")]
    nonzero_weights = sum(int(np.count_nonzero(w.value)) for c in weighted for w in c.weights)
    assert fresh == nonzero_weights + sum(c.bias.value.size for c in weighted if c.bias is not None)
    network.cell("conv3").weights[0].value[:5] = 0
    assert n2d2_synapses(network) == fresh
    assert cli.main(["check", str(MODELS_INI / "lenet.ini"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["n2d2_synapses"] == fresh
