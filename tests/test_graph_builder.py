"""graph.builder: LeNet end to end, build order, one-line errors, unknown keys, the provider."""

import logging
from pathlib import Path

import numpy as np
import pytest

from n2prune.errors import IniError, ShapeError
from n2prune.graph.builder import build_network, unknown_keys
from n2prune.ini import load_ini
from n2prune.registry import UnknownName
from n2prune.train.model import Model

LENET = Path(__file__).resolve().parents[1] / "models_ini" / "lenet.ini"

# LeCun's table as written in models_ini/lenet.ini (rows = input channels).
LENET_CONV2_TABLE = """
1 0 0 0 1 1 1 0 0 1 1 1 1 0 1 1
1 1 0 0 0 1 1 1 0 0 1 1 1 1 0 1
1 1 1 0 0 0 1 1 1 0 0 1 0 1 1 1
0 1 1 1 0 0 1 1 1 1 0 0 1 0 1 1
0 0 1 1 1 0 0 1 1 1 1 0 1 1 0 1
0 0 0 1 1 1 0 0 1 1 1 1 0 1 1 1
"""

SP = "[sp]\nSizeX=8\nSizeY=8\nNbChannels=2\n"
CONV = "[c]\nInput=sp\nType=Conv\nKernelDims=3 3\nNbOutputs=4\n"
FC_TARGET = "[fc]\nInput=c\nType=Fc\nNbOutputs=3\n[fc.Target]\n"


def write(tmp_path, text, name="m.ini"):
    path = tmp_path / name
    path.write_text(text)
    return path


def build(tmp_path, text, epoch_size=100, seed=0):
    ini = load_ini(write(tmp_path, text))
    network, provider, ctx = build_network(ini, seed, epoch_size)
    return network, provider, ctx, ini


def line_of(text, start):
    """1-based number of the first line of ``text`` that starts with ``start``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(start):
            return number
    raise AssertionError(f"no line starts with {start!r}")


def error_of(tmp_path, text, kind=IniError):
    """The one-line message ``build_network`` raises for ``text``, and the file's path."""
    path = write(tmp_path, text)
    with pytest.raises(kind) as info:
        build_network(load_ini(path), 0, 1)
    message = str(info.value)
    assert "\n" not in message
    return message, path


# -- LeNet ------------------------------------------------------------------

@pytest.fixture(scope="module")
def lenet():
    network, _, _ = build_network(load_ini(LENET), seed=3, epoch_size=48000)
    return network


def test_lenet_cells_in_order_with_their_output_shapes(lenet):
    got = [(c.name, c.type_name, c.output_shape) for c in lenet.cells]
    assert got == [
        ("conv1", "Conv", (6, 28, 28)), ("pool1", "Pool", (6, 14, 14)),
        ("conv2", "Conv", (16, 10, 10)), ("pool2", "Pool", (16, 5, 5)),
        ("conv3", "Conv", (120, 1, 1)), ("fc1", "Fc", (84, 1, 1)),
        ("fc1.drop", "Dropout", (84, 1, 1)), ("fc2", "Fc", (10, 1, 1)),
        ("softmax", "Softmax", (10, 1, 1)),
    ]
    assert lenet.input_shape == (1, 32, 32)
    assert [t.cell for t in lenet.targets] == ["softmax"]
    assert lenet.inputs["conv2"] == ["pool1"] and lenet.inputs["conv1"] == ["sp"]


def test_lenet_conv2_mapping_is_the_table_of_the_file(lenet):
    table = np.array(LENET_CONV2_TABLE.split(), dtype=np.int8).reshape(6, 16)
    conv2 = lenet.cell("conv2")
    mask = conv2.connections[0].mask[:, :, 0, 0]  # (outputs, channels)
    np.testing.assert_array_equal(mask.T, table)
    assert mask.sum() == 60
    weights = conv2.weights[0].value  # OCHW
    norms = np.abs(weights).sum(axis=(2, 3))
    assert np.all(norms[table.T == 0] == 0)  # unconnected kernels are zero
    assert np.all(norms[table.T == 1] > 0)


def test_lenet_solvers_come_from_common_config(lenet):
    assert set(lenet.solvers) == {"conv1", "conv2", "conv3", "fc1", "fc2"}
    for name, (weights, biases) in lenet.solvers.items():
        assert (weights.learning_rate, weights.momentum, weights.decay) == (0.05, 0.9, 0.0005), name
        for solver in (weights, biases):
            assert solver.policy == "StepDecay"
            assert solver.schedule.step_size == 48000  # the injected [sp]_EpochSize
            assert solver.schedule.decay == 0.993
            assert (solver.clamp_lo, solver.clamp_hi) == (-1.0, 1.0)
        # WeightsSolver.* keys do not reach the bias solver: N2D2 defaults remain.
        assert (biases.learning_rate, biases.momentum, biases.decay) == (0.01, 0.0, 0.0)


def test_lenet_no_bias_means_weights_only(lenet):
    for name in ("conv1", "conv2", "conv3", "fc1", "fc2"):
        cell = lenet.cell(name)
        assert cell.bias is None
        assert [p.role for p in cell.params()] == ["weights"]
    assert lenet.nb_params() == 150 + 2400 + 48000 + 10080 + 840


def test_epoch_size_is_injected_before_solvers_read_it():
    network, _, _ = build_network(load_ini(LENET), seed=0, epoch_size=1234)
    assert network.solvers["fc2"][0].schedule.step_size == 1234


def test_same_seed_same_weights_other_seed_other_weights():
    def weights(seed):
        network, _, _ = build_network(load_ini(LENET), seed=seed, epoch_size=1)
        return network.cell("conv1").weights[0].value
    np.testing.assert_array_equal(weights(5), weights(5))
    assert not np.array_equal(weights(5), weights(6))


# -- graph ------------------------------------------------------------------

def test_cells_are_built_by_level_then_file_order(tmp_path):
    text = (SP + "[b]\nInput=a\nType=Conv\nKernelDims=1 1\nNbOutputs=2\n"
            "[a]\nInput=sp\nType=Conv\nKernelDims=1 1\nNbOutputs=3\n"
            "[z]\nInput=sp\nType=Conv\nKernelDims=1 1\nNbOutputs=3\n"
            "[fc]\nInput=b\nType=Fc\nNbOutputs=2\n[fc.Target]\n")
    network, _, _, _ = build(tmp_path, text)
    assert [c.name for c in network.cells] == ["a", "z", "b", "fc"]


def test_generated_keys_are_readable_by_later_sections(tmp_path):
    text = (SP + CONV + "[p]\nInput=c\nType=Pool\nPooling=Average\nMapping.Size=1\n"
            "NbOutputs=[c]_NbOutputs\nPoolDims=[c]_OutputsWidth [c]_OutputsHeight\n"
            "[fc]\nInput=p\nType=Fc\nNbOutputs=[c]_NbChannels\n[fc.Target]\n")
    network, _, _, ini = build(tmp_path, text)
    assert network.cell("p").output_shape == (4, 1, 1)
    assert network.cell("fc").output_shape == (2, 1, 1)  # [c] has 2 input channels
    assert ini.value("c", "_OutputsHeight") == "6"
    assert ini.value("c", "_ChannelsWidth") == "8"


def test_multiple_inputs_give_one_weight_tensor_each(tmp_path):
    text = (SP + "[a]\nInput=sp\nType=Conv\nKernelDims=1 1\nNbOutputs=3\n"
            "[c]\nInput=a,sp\nType=Conv\nKernelDims=3 3\nNbOutputs=4\n" + FC_TARGET)
    network, _, _, _ = build(tmp_path, text)
    conv = network.cell("c")
    assert [w.value.shape for w in conv.weights] == [(4, 3, 3, 3), (4, 2, 3, 3)]
    assert network.inputs["c"] == ["a", "sp"]


# -- errors: one line, file:line [section] Key ------------------------------

def test_unknown_type_is_the_registry_wording_with_did_you_mean(tmp_path):
    text = SP + CONV.replace("Type=Conv", "Type=Convv") + FC_TARGET
    message, path = error_of(tmp_path, text, UnknownName)
    assert message == (f"unknown Type=Convv in [c] ({path}:{line_of(text, 'Type=Convv')}); "
                       "did you mean Conv? known: Activation, BatchNorm, Conv, Deconv, "
                       "Dropout, ElemWise, Fc, Normalize, Padding, Pool, Softmax, TargetBias")


def test_non_integer_nb_outputs(tmp_path):
    text = SP + CONV.replace("NbOutputs=4", "NbOutputs=six") + FC_TARGET
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, 'NbOutputs=six')} [c] NbOutputs:")
    assert "'six'" in message


def test_unknown_input(tmp_path):
    text = SP + CONV.replace("Input=sp", "Input=nosuch") + FC_TARGET
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, 'Input=nosuch')} [c] Input:")
    assert "nosuch" in message


def test_missing_target_points_at_the_last_cell(tmp_path):
    text = SP + CONV + "[fc]\nInput=c\nType=Fc\nNbOutputs=3\n"
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, '[fc]')} [fc]:")
    assert "[fc.Target]" in message


def test_target_of_a_cell_that_does_not_exist(tmp_path):
    text = SP + CONV + "[fc]\nInput=c\nType=Fc\nNbOutputs=3\n[fcc.Target]\n"
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, '[fcc.Target]')} [fcc.Target]:")
    assert "[fcc]" in message


def test_unknown_activation_function_name(tmp_path):
    text = SP + CONV + "ActivationFunction=Rectifer\n" + FC_TARGET
    message, path = error_of(tmp_path, text, UnknownName)
    line = line_of(text, "ActivationFunction=")
    assert message.startswith(f"unknown ActivationFunction=Rectifer in [c] ({path}:{line}); "
                              "did you mean Rectifier? known: Rectifier, Linear,")


@pytest.mark.parametrize("lines, key, detail", [
    ("ActivationFunction=Rectifier\nActivationFunction.Foo=1\n", "ActivationFunction.Foo",
     "LeakSlope"),
    ("ActivationFunction=Rectifier\nActivationFunction.LeakSlope=-0.1\n",
     "ActivationFunction.LeakSlope", "-0.1"),
    ("WeightsFiller=NormalFiller\nWeightsFiller.StdDev=-1\n", "WeightsFiller.StdDev", "-1"),
])
def test_bad_setting_of_a_member_is_an_ini_error_at_its_line(tmp_path, lines, key, detail):
    text = SP + CONV + lines + FC_TARGET
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, key)} [c] {key}:")
    assert detail in message


def test_cell_value_error_becomes_ini_error_naming_the_section(tmp_path, monkeypatch):
    from n2prune.cells.conv import Conv

    def broken(self):
        raise ValueError("bad thing")
    monkeypatch.setattr(Conv, "_output_plane", broken)
    text = SP + CONV + FC_TARGET
    message, path = error_of(tmp_path, text)
    assert message == f"{path}:{line_of(text, '[c]')} [c]: bad thing"


def test_mapping_matrix_of_the_wrong_size(tmp_path):
    text = SP + CONV + "Mapping(sp)=1 0 1\n" + FC_TARGET
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, 'Mapping(sp)')} [c] Mapping(sp):")
    assert "2x4 = 8" in message and "got 3" in message


def test_nb_groups_must_divide_the_channels(tmp_path):
    text = SP + CONV + "Mapping.NbGroups=3\n" + FC_TARGET
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, 'Mapping.NbGroups')} [c] Mapping.NbGroups:")


def test_elemwise_of_different_shapes_is_a_shape_error(tmp_path):
    text = (SP + "[a]\nInput=sp\nType=Conv\nKernelDims=3 3\nNbOutputs=4\n"
            "[b]\nInput=sp\nType=Conv\nKernelDims=5 5\nNbOutputs=4\n"
            "[c]\nInput=a,b\nType=ElemWise\nNbOutputs=4\nOperation=Sum\n" + FC_TARGET)
    message, path = error_of(tmp_path, text, ShapeError)
    assert message.startswith(f"{path}:{line_of(text, '[c]')} [c]:")
    assert "4x6x6" in message and "4x4x4" in message


def test_kernel_larger_than_input_is_a_shape_error(tmp_path):
    text = SP + CONV.replace("KernelDims=3 3", "KernelDims=9 9") + FC_TARGET
    message, path = error_of(tmp_path, text, ShapeError)
    assert message.startswith(f"{path}:{line_of(text, '[c]')} [c]:")
    assert "kernel 9" in message
    assert "[c]: [c]" not in message  # the cell is named once


# -- unknown keys -------------------------------------------------------------

def test_misspelt_key_is_reported_with_did_you_mean(tmp_path):
    text = SP + CONV + "KernelDim=5 5\n" + FC_TARGET
    network, _, ctx, ini = build(tmp_path, text)
    assert network.cell("c").kernel == (3, 3)
    path = tmp_path / "m.ini"
    messages = unknown_keys(ini, ctx)
    assert len(messages) == 1
    assert messages[0].startswith(f"{path}:{line_of(text, 'KernelDim=')} [c] KernelDim: "
                                  "unknown key KernelDim; did you mean KernelDims? known: ")


def test_unknown_key_of_a_cell_lists_the_names_of_its_type(tmp_path):
    text = SP + CONV + FC_TARGET.replace("NbOutputs=3\n", "NbOutputs=3\nKernelDims=3 3\n")
    _, _, ctx, ini = build(tmp_path, text)
    [message] = unknown_keys(ini, ctx)
    assert "[fc] KernelDims: unknown key KernelDims; known: " in message
    known = message.split("known: ")[1].split(", ")
    assert {"NbOutputs", "WeightsFiller", "ActivationFunction", "Model"} <= set(known)
    assert "PoolDims" not in known and "NoBias" not in known  # another type's; a parameter


def test_misspelt_key_of_a_template_section_is_reported_there(tmp_path):
    text = (SP + "[conv_def]\nType=Conv\nKernelDims=3 3\nWeightsFillr=HeFiller\n"
            "[c] conv_def\nInput=sp\nNbOutputs=4\n" + FC_TARGET)
    _, _, ctx, ini = build(tmp_path, text)
    messages = unknown_keys(ini, ctx)
    assert len(messages) == 1
    assert messages[0].startswith(f"{tmp_path / 'm.ini'}:{line_of(text, 'WeightsFillr')} "
                                  "[conv_def] WeightsFillr: unknown key")
    assert "did you mean WeightsFiller?" in messages[0]


def test_keys_of_unused_sections_and_overridden_template_keys_are_not_reported(tmp_path):
    text = (SP + "[notes]\nAnything=1\n[conv_def]\nType=Conv\nKernelDims=3 3\nNbOutputs=2\n"
            "[c] conv_def\nInput=sp\nNbOutputs=4\n" + FC_TARGET)
    network, _, ctx, ini = build(tmp_path, text)
    assert network.cell("c").nb_outputs == 4
    assert unknown_keys(ini, ctx) == []


def test_unknown_keys_in_provider_and_target_sections(tmp_path):
    text = SP + "BatchSise=3\n" + CONV + FC_TARGET + "TopM=2\n"
    _, _, ctx, ini = build(tmp_path, text)
    messages = unknown_keys(ini, ctx)
    assert [m.split(": ", 1)[0].rsplit(" ", 1)[1] for m in messages] == ["BatchSise", "TopM"]
    assert "did you mean BatchSize?" in messages[0] and "did you mean TopN?" in messages[1]


MODEL_TEXT = "[database]\nType=NoSuchDatabase\n" + SP + CONV + "KernelDim=5 5\n" + FC_TARGET


def test_model_strict_turns_unknown_keys_into_an_error(tmp_path):
    path = write(tmp_path, MODEL_TEXT)
    with pytest.raises(IniError) as info:
        Model(path, strict=True, need_data=False)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_of(MODEL_TEXT, 'KernelDim=')} [c] KernelDim:")
    assert "KernelDims" in message and "\n" not in message


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_model_lenient_only_warns(tmp_path):
    # A handler on the "n2prune" logger itself: the CLI may have turned propagation off.
    records, logger = _Records(), logging.getLogger("n2prune")
    logger.addHandler(records)
    try:
        model = Model(write(tmp_path, MODEL_TEXT), strict=False, need_data=False)
    finally:
        logger.removeHandler(records)
    assert model.database is None
    assert any("KernelDim: unknown key" in m for m in records.messages)


# -- stimuli provider ---------------------------------------------------------

def test_size_is_width_height_channels(tmp_path):
    network, provider, _, _ = build(tmp_path, "[sp]\nSize=12 10 3\nBatchSize=7\n" + CONV + FC_TARGET)
    assert provider.size == (10, 12, 3)  # (height, width, channels)
    assert provider.batch_size == 7
    assert network.input_shape == (3, 10, 12)
    assert network.cell("c").output_shape == (4, 8, 10)


def test_size_x_size_y_nb_channels(tmp_path):
    network, provider, _, _ = build(tmp_path, "[sp]\nSizeX=12\nSizeY=10\nNbChannels=2\n" + CONV + FC_TARGET)
    assert provider.size == (10, 12, 2)
    assert network.input_shape == (2, 10, 12)


def test_transformations_apply_in_file_order(tmp_path):
    # Rescale 28 -> 14 then PadCrop -> 20 gives 20x20; the other order would give 14x14.
    text = ("[sp]\nSize=20 20\n"
            "[sp.Transformation-b]\nType=RescaleTransformation\nWidth=14\nHeight=14\n"
            "[sp.Transformation-a]\nType=PadCropTransformation\nWidth=20\nHeight=20\n"
            "[c]\nInput=sp\nType=Conv\nKernelDims=3 3\nNbOutputs=4\n" + FC_TARGET)
    _, provider, _, _ = build(tmp_path, text)
    steps = [type(t).__name__ for t in provider.steps("learn")]
    assert steps == ["Rescale", "PadCrop"]
    images = np.full((3, 28, 28), 255, dtype=np.uint8)
    batch = provider.batch(provider.prepare(images, "test"), np.arange(3),
                           np.random.default_rng(0), "test")
    assert batch.shape == (1, 20, 20, 3) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, 3:17, 3:17, :], 1.0)


def test_env_section_is_the_provider_of_a_frame_model(tmp_path):
    text = ("DefaultModel=Frame\n[env]\nSizeX=8\nSizeY=8\nBatchSize=4\n"
            + CONV.replace("Input=sp", "Input=env") + FC_TARGET)
    network, provider, ctx, ini = build(tmp_path, text)
    assert provider.size == (8, 8, 1) and provider.batch_size == 4
    assert network.inputs["c"] == ["sp"]
    assert unknown_keys(ini, ctx) == []


def test_spiking_default_model_is_refused(tmp_path):
    text = "; a spiking model\nDefaultModel=Transcode_CUDA\n" + SP + CONV + FC_TARGET
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:2 ")
    assert "Transcode_CUDA" in message and "not supported" in message


def test_zero_stimuli_size_is_refused(tmp_path):
    text = "[sp]\nSize=0 8\n" + CONV + FC_TARGET
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:2 [sp] Size:")


def test_bad_transformation_value_names_its_section(tmp_path):
    text = (SP + "[sp.Transformation]\nType=ChannelExtractionTransformation\nCSChannel=Purple\n"
            + CONV + FC_TARGET)
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, 'CSChannel')} [sp.Transformation] CSChannel:")
    assert "Purple" in message


def test_key_shadowed_by_a_stronger_spelling_is_still_reported(tmp_path):
    # Mapping.NbGroups wins over a per-parent generator key, which N2D2 never reads.
    text = SP + CONV + "Mapping.NbGroups=2\nMapping(sp).Size=1\n" + FC_TARGET
    _, _, ctx, ini = build(tmp_path, text)
    messages = unknown_keys(ini, ctx)
    assert len(messages) == 1 and "[c] Mapping(sp).Size: key not used" in messages[0]


def test_pooling_is_required_as_in_n2d2(tmp_path):
    text = SP + CONV + "[p]\nInput=c\nType=Pool\nPoolDims=2 2\nNbOutputs=4\n" + FC_TARGET.replace(
        "Input=c", "Input=p")
    message, path = error_of(tmp_path, text)
    assert message == f"{path}:{line_of(text, '[p]')} [p] Pooling: missing required key"


def test_a_missing_key_names_the_misspelt_one_written_instead(tmp_path):
    text = SP + CONV.replace("KernelDims=", "KernelDim=") + FC_TARGET
    message, _path = error_of(tmp_path, text)
    assert message.endswith(f"missing required key (KernelDims, KernelSize or KernelWidth+"
                            f"KernelHeight); is KernelDim (line {line_of(text, 'KernelDim=')}) "
                            "a misspelling of KernelDims?")


def test_the_stimuli_provider_with_an_input_is_an_error(tmp_path):
    text = SP.replace("[sp]\n", "[sp]\nInput=c\n") + CONV + FC_TARGET
    message, path = error_of(tmp_path, text)
    assert message.startswith(f"{path}:{line_of(text, 'Input=c')} [sp] Input: [sp] is the "
                              "stimuli provider, not a cell")
