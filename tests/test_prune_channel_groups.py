"""Channel groups: coupled channels are removed together, and removed means exactly 0."""

import numpy as np
import pytest
from channel_net import channel_net, random_batch

from n2prune.errors import UserError
from n2prune.prune.channel_graph import ChannelGraph
from n2prune.prune.channels import kept_units, zero_removed_channels
from n2prune.prune.prune_cell import PruneCell
from n2prune.prune.pruned_cells import initialize_masks


def resolved(**kwargs):
    network = channel_net(**kwargs)
    initialize_masks(network, np.random.default_rng(0), 0)
    return network


def test_groups_follow_adds_depthwise_cells_and_pass_through_cells():
    graph = ChannelGraph(channel_net())
    by_producers = {g.producers: g for g in graph.groups}
    assert set(by_producers) == {("c1", "pw"), ("c3",), ("cat",)}  # fc feeds the target
    shared = by_producers[("c1", "pw")]
    assert len(shared.units) == 8
    for unit in shared.units:  # one channel of each cell the residual block passes through
        assert sorted(name for name, _ in unit.channels) == ["add", "bn", "c1", "dw", "pw"]
    assert {len(u.channels) for u in by_producers[("cat",)].units} == {2}  # cat and pool


def test_coupled_cells_remove_the_same_channels():
    removed = resolved().removed_channels
    assert len(removed["c1"]) == 4
    for name in ("dw", "pw", "bn", "add"):
        np.testing.assert_array_equal(removed[name], removed["c1"])
    assert len(removed["c3"]) == 2 and len(removed["cat"]) == 3
    np.testing.assert_array_equal(removed["pool"], removed["cat"])
    assert "fc" not in removed


def test_a_cell_reading_two_inputs_removes_whole_output_channels():
    network = resolved()
    cat = network.cell("cat")
    dead = [np.flatnonzero(~cat.quantizer.mask(k).reshape(6, -1).any(axis=1))
            for k in range(len(cat.weights))]
    np.testing.assert_array_equal(dead[0], dead[1])
    np.testing.assert_array_equal(dead[0], network.removed_channels["cat"])
    assert cat.quantizer.sparsity() == pytest.approx(0.5)


def test_removed_channels_are_zero_everywhere_they_flow():
    network = resolved()
    for param in network.params():  # biases and BatchNorm shifts that would leak
        param.value += np.float32(0.5)
    zero_removed_channels(network)
    network.forward(random_batch(network))
    for name, channels in network.removed_channels.items():
        assert not network.outputs[name][channels].any(), name
    kept = np.setdiff1d(np.arange(8), network.removed_channels["add"])
    assert network.outputs["add"][kept].any()


def test_every_producer_of_a_group_must_prune_channels():
    with pytest.raises(UserError, match=r"\[c1\] shares its channels with \[pw\]: give it "
                                        "QWeight=Prune with QWeight.Pattern=Channel too"):
        resolved(pruned=("c1", "c3"))


def test_a_channel_feeding_the_target_cannot_be_removed():
    network = channel_net()
    graph = ChannelGraph(network)
    assert graph.group_of("fc") is None
    assert all(u.locked for u in graph.units if ("fc", 0) in u.channels)


@pytest.mark.parametrize("total, fraction, round_to, kept", [
    (8, 0.5, 1, 4), (8, 0.6, 1, 3), (8, 0.6, 4, 4), (8, 1.0, 1, 1), (8, 1.0, 4, 4),
    (6, 0.5, 4, 4), (3, 0.0, 4, 3),
])
def test_kept_units_round_up_and_never_reach_zero(total, fraction, round_to, kept):
    assert kept_units(total, fraction, round_to) == kept


def test_round_to_keeps_a_multiple_of_channels():
    removed = resolved(threshold=0.7, extra="QWeight.RoundTo=4").removed_channels
    assert len(removed["c1"]) == 4  # kept 2 of 8, rounded up to 4
    assert "c3" not in removed  # kept 1 of 4, rounded up to 4


def test_a_depthwise_cell_with_a_channel_quantizer_follows_its_producer():
    network = resolved(pruned=("c1", "dw", "pw", "c3", "cat"))
    dw = network.cell("dw")
    dead = np.flatnonzero(~dw.quantizer.mask(0).reshape(8, -1).any(axis=1))
    np.testing.assert_array_equal(dead, network.removed_channels["c1"])


def test_a_channel_quantizer_where_no_channel_can_go_is_an_error():
    network = channel_net()
    network.cell("fc").quantizer = PruneCell(prune_mode="Static", threshold=0.5, pattern="Channel")
    with pytest.raises(UserError, match=r"\[fc\] QWeight: Pattern=Channel, but none of its channels"):
        initialize_masks(network, np.random.default_rng(0), 0)
