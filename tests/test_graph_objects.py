"""graph.objects: a cell's solvers, named through SOLVERS and read against their key table."""

import pytest

from n2prune.errors import IniError
from n2prune.graph.builder import build_network
from n2prune.ini import load_ini
from n2prune.registry import UnknownName

SP_FC = "[sp]\nSizeX=4\nSizeY=4\n[fc]\nInput=sp\nType=Fc\nNbOutputs=3\n"


def solvers_of(tmp_path, fc_extra, kind=None):
    """The (weights, biases) solvers of ``[fc]`` with ``fc_extra`` lines, or with ``kind``
    the one-line error, the file's path and the 1-based line of each text line."""
    path = tmp_path / "m.ini"
    text = SP_FC + fc_extra + "[fc.Target]\n"
    path.write_text(text)
    if kind is None:
        network, _, _ = build_network(load_ini(path), 0, 10)
        return network.solvers["fc"]
    with pytest.raises(kind) as info:
        build_network(load_ini(path), 0, 10)
    lines = {line: number for number, line in enumerate(text.splitlines(), 1)}
    return str(info.value), path, lines


@pytest.mark.parametrize("key, name, hint", [("Solvers", "Adam", ""),
                                             ("WeightsSolver", "SGDD", "did you mean SGD? "),
                                             ("BiasSolver", "SGDs", "did you mean SGD? ")])
def test_unknown_solver_has_the_registry_wording(tmp_path, key, name, hint):
    message, path, lines = solvers_of(tmp_path, f"{key}={name}\n", UnknownName)
    line = lines[f"{key}={name}"]
    assert message == f"unknown {key}={name} in [fc] ({path}:{line}); {hint}known: SGD"


def test_solver_names_and_keys_are_read(tmp_path):
    text = ("Solvers=SGD\nWeightsSolver=SGD\nSolvers.LearningRate=0.5\nBiasSolver.Momentum=0.25\n"
            "Solvers.QuantizationLevels=8\nSolvers.Clamping=:2\n")
    weights, biases = solvers_of(tmp_path, text)
    assert (weights.learning_rate, weights.momentum) == (0.5, 0.0)
    assert (biases.learning_rate, biases.momentum) == (0.5, 0.25)
    assert (weights.clamp_lo, weights.clamp_hi) == (None, 2.0)


def test_unknown_solver_key_lists_the_table(tmp_path):
    message, path, lines = solvers_of(tmp_path, "Solvers.LearningRat=0.1\n", IniError)
    assert message.startswith(f"{path}:{lines['Solvers.LearningRat=0.1']} [fc] "
                              "Solvers.LearningRat: unknown SGD solver parameter LearningRat; "
                              "did you mean LearningRate? known: LearningRate, Momentum,")


@pytest.mark.parametrize("extra, blamed, words", [
    ("Solvers.LearningRatePolicy=StepDecay\nSolvers.LearningRateStepSize=0\n",
     "Solvers.LearningRateStepSize=0", "needs LearningRateStepSize > 0"),
    ("Solvers.LearningRatePolicy=PolyDecay\n", "Solvers.LearningRatePolicy=PolyDecay",
     "needs MaxIterations > 0"),
    ("Solvers.LearningRatePolicy=Step\n", "Solvers.LearningRatePolicy=Step",
     "expected one of None, StepDecay,"),
    ("BiasSolver.Clamping=2:1\n", "BiasSolver.Clamping=2:1", "min is larger than max"),
    ("WeightsSolver.IterationSize=0\n", "WeightsSolver.IterationSize=0", "IterationSize must be"),
])
def test_refused_setting_is_reported_at_the_key_it_blames(tmp_path, extra, blamed, words):
    message, path, lines = solvers_of(tmp_path, extra, IniError)
    key = blamed.split("=")[0]
    assert message.startswith(f"{path}:{lines[blamed]} [fc] {key}: ")
    assert words in message


def test_an_expression_giving_a_float_for_an_integer_key_is_floored_as_python_2(tmp_path, caplog):
    # As N2D2's ResNet-11.ini: $(EpochSize * EPOCHS / BATCH) prints a float in Python 3.
    with caplog.at_level("INFO", logger="n2prune"):
        weights, _ = solvers_of(tmp_path, "Solvers.MaxIterations=$([sp]_EpochSize * 90 / 256)\n")
    assert weights.schedule.max_iterations == 3  # 3.515625 floored
    assert "gave 3.515625; read as 3" in caplog.text


def test_a_decimal_written_for_an_integer_key_says_to_write_a_whole_number(tmp_path):
    extra = "Solvers.MaxIterations=3.5\n"
    message, path, lines = solvers_of(tmp_path, extra, IniError)
    assert message == (f"{path}:{lines[extra.strip()]} [fc] Solvers.MaxIterations: expected an "
                       "integer, got '3.5'; N2D2 refuses a decimal point here too: write a "
                       "whole number (in $(...), divide with // or wrap it in int(...))")


def test_the_same_expression_with_floor_division_is_read(tmp_path):
    weights, _ = solvers_of(tmp_path, "Solvers.MaxIterations=$([sp]_EpochSize * 90 // 4)\n")
    assert weights.schedule.max_iterations == 10 * 90 // 4


POLY = "Solvers.LearningRatePolicy=PolyDecay\nSolvers.MaxIterations={}\n"


def test_a_zero_from_the_stand_in_epoch_size_is_checked_as_one(tmp_path, caplog):
    # Without a database [sp]_EpochSize is 1, so N2D2's $(EpochSize * EPOCHS // BATCH)
    # is 0, which PolyDecay refuses; nothing trains under check, so it goes on.
    path = tmp_path / "m.ini"
    path.write_text(SP_FC + POLY.format("$([sp]_EpochSize * 90 // 256)") + "[fc.Target]\n")
    with caplog.at_level("INFO", logger="n2prune"):
        network, _, _ = build_network(load_ini(path), 0, None)
    assert [s.schedule.max_iterations for s in network.solvers["fc"]] == [1, 1]
    notes = [r.getMessage() for r in caplog.records if "stand-in" in r.getMessage()]
    assert notes == [(f"notice: {path}:9 [fc] Solvers.MaxIterations is 0 with the stand-in "
                      "[sp]_EpochSize=1 (no database); checked as 1, training computes it "
                      "from the learn set")]


@pytest.mark.parametrize("value, epoch_size", [("$([sp]_EpochSize * 90 // 256)", 2),
                                               ("0", None), ("$(90 // 256)", None)])
def test_a_zero_max_iterations_is_refused_otherwise(tmp_path, value, epoch_size):
    # With real data, or with a 0 that does not come from the epoch size.
    path = tmp_path / "m.ini"
    path.write_text(SP_FC + POLY.format(value) + "[fc.Target]\n")
    with pytest.raises(IniError, match=r"m.ini:9 \[fc\] Solvers.MaxIterations: "
                                       "LearningRatePolicy=PolyDecay needs MaxIterations > 0"):
        build_network(load_ini(path), 0, epoch_size)
