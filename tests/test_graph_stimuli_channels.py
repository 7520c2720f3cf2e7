"""graph.stimuli: N2D2's Channel* and Channels* transformation sections make the channels."""

import numpy as np
import pytest
from test_graph_stimuli import NET, build_error, line_of, load

from n2prune.data import ChannelExtraction, RangeAffine
from n2prune.graph.builder import build_network, unknown_keys

SP = "[sp]\nSizeX=4\nSizeY=3\n"
EXTRACT = "[sp.ChannelTransformation-{0}]\nType=ChannelExtractionTransformation\nCSChannel={0}\n"
MINUS = "[sp.ChannelTransformation-{0}m]\nType=RangeAffineTransformation\nChannel={1}\n" \
        "FirstOperator=Minus\nFirstValue={2}\n"
RGB = EXTRACT.format("Red") + EXTRACT.format("Green") + EXTRACT.format("Blue")


def provider_of(tmp_path, text):
    ini, _ = load(tmp_path, text)
    network, provider, ctx = build_network(ini, 0, 1)
    return network, provider, unknown_keys(ini, ctx)


def test_sections_without_channel_open_channels_and_channel_n_joins_one(tmp_path):
    # As GoogleNet.ini: Red, Green, Blue, then a mean removed from one of them.
    text = SP + RGB + MINUS.format("b", 2, 123) + MINUS.format("r", 0, 104) + NET
    network, provider, unknown = provider_of(tmp_path, text)
    assert provider.size == (3, 4, 3) and network.input_shape == (3, 3, 4) and not unknown
    steps = provider.channel_steps("learn")
    assert [[type(t).__name__ for t in channel] for channel in steps] == [
        ["ChannelExtraction", "RangeAffine"], ["ChannelExtraction"],
        ["ChannelExtraction", "RangeAffine"]]
    assert [steps[0][0].channel, steps[1][0].channel, steps[2][0].channel] == ["Red", "Green", "Blue"]
    assert (steps[0][1].first_value, steps[2][1].first_value) == ([104.0], [123.0])


def test_channels_sections_join_every_channel_opened_and_apply_to_scopes_them(tmp_path):
    divide = ("[sp.ChannelsOnTheFlyTransformation]\nType=RangeAffineTransformation\n"
              "FirstOperator=Divides\nFirstValue=2\nApplyTo=LearnOnly\n")
    fly = "[sp.ChannelOnTheFlyTransformation]\nType=FlipTransformation\nRandomHorizontalFlip=1\n"
    text = SP + EXTRACT.format("Red") + divide + EXTRACT.format("Blue") + fly + NET
    _, provider, _ = provider_of(tmp_path, text)
    learn, test = provider.channel_steps("learn"), provider.channel_steps("test")
    assert [[type(t).__name__ for t in c] for c in learn] == [
        ["ChannelExtraction", "RangeAffine"], ["ChannelExtraction"], ["Flip"]]
    assert [[type(t).__name__ for t in c] for c in test] == [
        ["ChannelExtraction"], ["ChannelExtraction"], ["Flip"]]
    # The cached steps of a channel run before its on-the-fly ones, whatever the file order.
    assert [len(cached) for cached, _ in provider.channels] == [1, 1, 0]


def test_a_batch_is_assembled_from_the_channel_pipelines(tmp_path):
    text = SP + RGB + MINUS.format("g", 1, 100) + NET
    _, provider, _ = provider_of(tmp_path, text)
    images = np.random.default_rng(0).integers(0, 256, (2, 3, 4, 3)).astype(np.uint8)
    batch = provider.batch(provider.prepare(images, "learn"), np.arange(2), None, "learn")
    bgr = images.transpose(3, 1, 2, 0).astype(np.float32)  # (C, H, W, N)
    np.testing.assert_allclose(batch[0], bgr[2] / 255, rtol=1e-6)
    np.testing.assert_array_equal(batch[1], bgr[1] - 100)
    np.testing.assert_allclose(batch[2], bgr[0] / 255, rtol=1e-6)
    assert isinstance(provider.channel_steps("test")[1][1], RangeAffine)
    assert isinstance(provider.channel_steps("test")[2][0], ChannelExtraction)


@pytest.mark.parametrize("before, channel, opened", [("", 0, "none yet"), (RGB, 3, "0 to 2")])
def test_a_channel_not_opened_is_an_error_at_its_key(tmp_path, before, channel, opened):
    minus = MINUS.format("x", channel, 1)
    message, path = build_error(tmp_path, SP + before + minus + NET)
    line = line_of(SP + before + minus, f"Channel={channel}")
    assert message == (f"{path}:{line} [sp.ChannelTransformation-xm] Channel: channel {channel} "
                       f"does not exist (opened so far: {opened}); a ChannelTransformation "
                       "without Channel= opens the next")


def test_a_channels_section_before_any_channel_is_an_error(tmp_path):
    text = SP + "[sp.ChannelsTransformation]\nType=FlipTransformation\nHorizontalFlip=1\n" + NET
    message, path = build_error(tmp_path, text)
    assert message.startswith(f"{path}:4 [sp.ChannelsTransformation]: no channel to apply it to")


def test_channel_outside_a_channel_section_is_an_unused_key(tmp_path):
    text = (SP + "[sp.Transformation]\nType=RangeAffineTransformation\nChannel=0\n"
            "FirstOperator=Plus\nFirstValue=1\n" + NET)
    _, provider, unknown = provider_of(tmp_path, text)
    assert provider.channels == [] and provider.size == (3, 4, 1)
    [message] = unknown
    assert "[sp.Transformation] Channel: unknown key Channel" in message


def test_adversarial_sections_are_refused(tmp_path):
    message, path = build_error(tmp_path, SP + "[sp.Adversarial]\nAttack=FGSM\n" + NET)
    assert message == (f"{path}:4 [sp.Adversarial]: adversarial attacks are not supported by "
                       "n2prune (remove the section)")
