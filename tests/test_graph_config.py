"""graph.config: ConfigSection merging and the routing of Solvers.* / QWeight.* / cell params."""

import pytest

from n2prune.errors import IniError
from n2prune.graph.builder import build_network
from n2prune.graph.config import route_cell_config
from n2prune.ini import load_ini, values

SP = "[sp]\nSizeX=6\nSizeY=6\nNbChannels=1\n"
CONV = "[c]\nInput=sp\nType=Conv\nKernelDims=3 3\nNbOutputs=2\n"
TAIL = "[fc]\nInput=c\nType=Fc\nNbOutputs=3\n[fc.Target]\n"


def build(tmp_path, cell_extra, sections):
    """Network of a Conv ``[c]`` (with ``cell_extra`` lines) and config ``sections`` text."""
    path = tmp_path / "m.ini"
    text = SP + CONV + cell_extra + TAIL + sections
    path.write_text(text)
    ini = load_ini(path)
    network, _, _ = build_network(ini, 0, 10)
    return network, ini, path, text


def error_of(tmp_path, cell_extra, sections):
    with pytest.raises(IniError) as info:
        build(tmp_path, cell_extra, sections)
    message = str(info.value)
    assert "\n" not in message
    return message


def line_of(text, start):
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def solvers(network, cell="c"):
    return network.solvers[cell]


def test_later_config_section_wins(tmp_path):
    network, *_ = build(tmp_path, "ConfigSection=a,b\n",
                        "[a]\nNoBias=1\nSolvers.Momentum=0.5\n[b]\nNoBias=0\nSolvers.Momentum=0.8\n")
    assert network.cell("c").bias is not None
    weights, biases = solvers(network)
    assert weights.momentum == biases.momentum == 0.8
    network, *_ = build(tmp_path, "ConfigSection=b,a\n",
                        "[a]\nNoBias=1\nSolvers.Momentum=0.5\n[b]\nNoBias=0\nSolvers.Momentum=0.8\n")
    assert network.cell("c").bias is None
    assert solvers(network)[0].momentum == 0.5


@pytest.mark.parametrize("order", ["a,b", "b,a"])
def test_weights_solver_beats_solvers_whatever_the_order(tmp_path, order):
    sections = "[a]\nWeightsSolver.LearningRate=0.3\n[b]\nSolvers.LearningRate=0.7\n"
    network, *_ = build(tmp_path, f"ConfigSection={order}\n", sections)
    weights, biases = solvers(network)
    assert weights.learning_rate == 0.3
    assert biases.learning_rate == 0.7


def test_specific_key_wins_within_one_section_too(tmp_path):
    sections = "[a]\nBiasSolver.Decay=0.2\nSolvers.Decay=0.1\n"
    network, *_ = build(tmp_path, "ConfigSection=a\n", sections)
    weights, biases = solvers(network)
    assert (weights.decay, biases.decay) == (0.1, 0.2)


def test_bias_solver_keys_reach_only_the_bias_solver(tmp_path):
    sections = "[a]\nBiasSolver.LearningRate=0.002\nBiasSolver.LearningRatePolicy=StepDecay\n"
    network, *_ = build(tmp_path, "ConfigSection=a\n", sections)
    weights, biases = solvers(network)
    assert (biases.learning_rate, biases.policy) == (0.002, "StepDecay")
    assert (weights.learning_rate, weights.policy) == (0.01, "None")  # N2D2 defaults


def test_every_weight_cell_gets_its_own_solver_objects(tmp_path):
    network, *_ = build(tmp_path, "ConfigSection=a\n", "[a]\nSolvers.LearningRate=0.5\n")
    assert solvers(network)[0] is not solvers(network)[1]
    assert solvers(network, "fc")[0].learning_rate == 0.01  # [fc] has no ConfigSection
    assert solvers(network)[0] is not solvers(network, "fc")[0]


def test_unknown_cell_parameter_in_config_section(tmp_path):
    sections = "[a]\nNoBiass=1\n"
    message = error_of(tmp_path, "ConfigSection=a\n", sections)
    path, text = tmp_path / "m.ini", SP + CONV + "ConfigSection=a\n" + TAIL + sections
    assert message.startswith(f"{path}:{line_of(text, 'NoBiass')} [a] NoBiass:")
    assert "unknown Conv parameter NoBiass; did you mean NoBias? " in message
    # The known parameters are listed: the table's, then those accepted and ignored.
    assert message.endswith("known: NoBias, BackPropagate, WeightsExportFormat, WeightsExportFlip")


def test_parameter_of_another_cell_type_is_unknown(tmp_path):
    message = error_of(tmp_path, "ConfigSection=a\n", "[a]\nDropout=0.3\n")
    assert "[a] Dropout: unknown Conv parameter Dropout; known: NoBias," in message


def test_unknown_solver_parameter(tmp_path):
    message = error_of(tmp_path, "ConfigSection=a\n", "[a]\nWeightsSolver.Momentun=0.9\n")
    assert "[a] WeightsSolver.Momentun:" in message
    assert "did you mean Momentum?" in message and "LearningRate" in message


def test_missing_config_section(tmp_path):
    message = error_of(tmp_path, "ConfigSection=commn\n", "[common]\nNoBias=1\n")
    assert "[c] ConfigSection: unknown section [commn]; did you mean common? known: sp, c" in message


def test_config_values_can_reference_generated_keys(tmp_path):
    network, *_ = build(tmp_path, "ConfigSection=a\n",
                             "[a]\nSolvers.LearningRateStepSize=$([sp]_EpochSize * 3)\n")
    assert solvers(network)[0].schedule.step_size == 30


def test_quantizer_keys_are_routed_config_section_winning(tmp_path):
    cell = "QWeight=Prune\nQWeight.Threshold=0.3\nQWeight.PruningMode=Static\nConfigSection=a\n"
    network, ini, *_ = build(tmp_path, cell, "[a]\nQWeight.Threshold=0.5\n")
    keys = network.quantizer_keys["c"]
    assert keys == {"Threshold": ("a", "QWeight.Threshold"),
                    "PruningMode": ("c", "QWeight.PruningMode")}
    assert ini.read(*keys["Threshold"], values.as_float) == 0.5
    assert ini.read(*keys["PruningMode"], values.as_str) == "Static"
    assert set(network.quantizer_keys) == {"c"}


def test_quantizer_keys_from_an_inherited_section(tmp_path):
    path = tmp_path / "m.ini"
    path.write_text(SP + "[quant]\nQWeight=Prune\nQWeight.Delta=0.01\n"
                    "[c] quant\nInput=sp\nType=Conv\nKernelDims=3 3\nNbOutputs=2\n" + TAIL)
    network, _, _ = build_network(load_ini(path), 0, 1)
    assert network.quantizer_keys == {"c": {"Delta": ("c", "QWeight.Delta")}}


def test_quantizer_keys_without_qweight_are_an_error(tmp_path):
    message = error_of(tmp_path, "ConfigSection=a\n", "[a]\nQWeight.Threshold=0.5\n")
    assert "[a] QWeight.Threshold:" in message and "QWeight=" in message


def test_unknown_weight_quantizer_lists_the_known_ones(tmp_path):
    message = error_of(tmp_path, "QWeight=Sat\n", "")
    assert message.startswith(f"{tmp_path / 'm.ini'}:10 [c] QWeight:")  # 4 [sp] + 5 [c] lines
    assert "Sat" in message and "known: Prune" in message


def test_qweight_on_a_cell_without_weights_is_an_error(tmp_path):
    extra = "[p]\nInput=c\nType=Pool\nPoolDims=2 2\nNbOutputs=2\nPooling=Max\nQWeight=Prune\n"
    message = error_of(tmp_path, "", extra)
    assert "[p] QWeight:" in message and "Pool" in message


@pytest.mark.parametrize("cell_extra, sections, where", [
    ("QAct=SAT\n", "", "[c] QAct:"),
    ("ConfigSection=a\n", "[a]\nQAct.Range=255\n", "[a] QAct.Range:"),
    ("ConfigSection=a\n", "[a]\nQActSolver.LearningRate=0.1\n", "[a] QActSolver.LearningRate:"),
])
def test_activation_quantization_is_not_supported(tmp_path, cell_extra, sections, where):
    message = error_of(tmp_path, cell_extra, sections)
    assert where in message and "not supported" in message


def test_route_cell_config_keeps_where_each_key_was_written(tmp_path):
    path = tmp_path / "m.ini"
    path.write_text("[c]\nConfigSection=a,b\nQWeight.Delta=0.1\n"
                    "[a]\nNoBias=1\nSolvers.Momentum=0.5\n[b]\nWeightsSolver.Momentum=0.9\n")
    ini = load_ini(path)
    routed = route_cell_config(ini, "c")
    assert routed.params == {"NoBias": ("a", "NoBias")}
    assert routed.weights_solver == {"Momentum": ("b", "WeightsSolver.Momentum")}
    assert routed.bias_solver == {"Momentum": ("a", "Solvers.Momentum")}
    assert routed.quantizer == {"Delta": ("c", "QWeight.Delta")}
    assert ini.is_used("a", "NoBias") and ini.is_used("c", "QWeight.Delta")


@pytest.mark.parametrize("cell_extra, sections, where, message", [
    ("ConfigSection=a\n", "[a]\nBackPropagate=0\n", "[a] BackPropagate:",
     "BackPropagate=0 (no gradient to the inputs) is not supported"),
    ("SubSampleX=2\n", "", "[c] SubSampleX:", "SubSample other than 1 is not supported"),
], ids=["parameter", "dims spelling"])
def test_n2d2_keys_without_a_setting_refuse_other_values(tmp_path, cell_extra, sections, where,
                                                          message):
    text = error_of(tmp_path, cell_extra, sections)
    assert text.endswith(f"{where} {message}")


def test_fc_input_cropping_is_refused_whatever_its_value(tmp_path):
    path = tmp_path / "m.ini"
    path.write_text(SP + CONV + TAIL.replace("NbOutputs=3\n", "NbOutputs=3\nInputWidth=0\n"))
    with pytest.raises(IniError, match=r"\[fc\] InputWidth: Fc input cropping is not supported$"):
        build_network(load_ini(path), 0, 10)


def test_n2d2_keys_without_an_effect_are_read_and_ignored(tmp_path):
    cell = "Model=Frame_CUDA\nDataType=Float32\nSubSampleDims=1 1\nConfigSection=a\n"
    network, ini, *_ = build(tmp_path, cell, "[a]\nWeightsExportFormat=HWCO\nBackPropagate=1\n")
    assert network.cell("c").nb_outputs == 2
    assert all(ini.is_used(section, key) for section, key in [
        ("c", "Model"), ("c", "DataType"), ("c", "SubSampleDims"), ("a", "WeightsExportFormat")])
    message = error_of(tmp_path, "ConfigSection=a\n", "[a]\nWeightsExportFormat=CHWO\n")
    assert "[a] WeightsExportFormat:" in message and "OCHW, HWCO" in message


def test_fc_normalize_is_a_cell_parameter(tmp_path):
    """N2D2's FcCell parameter Normalize (AM-Softmax's fc2.config); Conv has none."""
    network, *_ = build(tmp_path, "", "")
    assert not network.cell("fc").normalize
    path = tmp_path / "m.ini"
    path.write_text(SP + CONV + TAIL.replace("NbOutputs=3\n", "NbOutputs=3\nConfigSection=a\n")
                    + "[a]\nNormalize=1\n")
    network, _, _ = build_network(load_ini(path), 0, 10)
    assert network.cell("fc").normalize
    message = error_of(tmp_path, "ConfigSection=a\n", "[a]\nNormalize=1\n")
    assert "[a] Normalize: unknown Conv parameter Normalize" in message
