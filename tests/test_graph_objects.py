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
