"""Parameters and MACs dense, effective (non-zero weights) and shrunk, as check and inspect show."""

import json

import numpy as np
from channel_net import channel_net, channel_net_text

from n2prune import cli
from n2prune.prune.costs import cell_costs, totals
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
