import numpy as np
import pytest

from n2prune.cells.base import Param
from n2prune.errors import SettingError
from n2prune.registry import UnknownName, signature_parameters
from n2prune.solvers import LR_POLICIES, SOLVERS
from n2prune.solvers.sgd import SGD, parse_clamping


def _param(values, name="w"):
    return Param(name, np.array(values, dtype=np.float32), "weights")


def _step(solver, param, grad, batch_size=4):
    param.grad[...] = grad
    solver.update(param, batch_size)
    return param.value.astype(np.float64)


@pytest.mark.parametrize("text, expected", [
    ("-1.0:1.0", (-1.0, 1.0)), (":1", (None, 1.0)), ("-1:", (-1.0, None)),
    ("", (None, None)), (":", (None, None)), (" -0.5 : 2 ", (-0.5, 2.0)),
])
def test_parse_clamping(text, expected):
    assert parse_clamping(text) == expected


@pytest.mark.parametrize("text", ["1", "a:1", "-1:0:1", "2:1"])
def test_parse_clamping_rejects(text):
    with pytest.raises(SettingError) as info:
        parse_clamping(text)
    assert info.value.setting == "clamping"


def test_registry():
    assert SOLVERS.lookup("SGD") is SGD
    with pytest.raises(UnknownName, match="^unknown Solvers=Adam; known: SGD$"):
        SOLVERS.lookup("Adam")


def test_every_keyword_of_sgd_is_an_ini_key():
    table = SGD.key_table
    assert sorted(key.attr for key in table) == sorted(signature_parameters(SGD))
    assert table["QuantizationLevels"].default == 0  # accepted, no effect
    assert table["LearningRatePolicy"].kind.choices is LR_POLICIES


def test_three_steps_momentum_decay_clamping():
    # v = m v - lr g - decay lr w ; w = clip(w + v), worked out by hand:
    # lr 0.5, m 0.5, decay 0.1, clamp [-2, 1]. Batch 4 must not matter
    # (grad is the batch mean) and decay uses the undivided rate.
    solver = SGD(learning_rate=0.5, momentum=0.5, decay=0.1, clamping="-2:1")
    w = _param([1.0, -2.0])
    np.testing.assert_allclose(_step(solver, w, [1.0, -1.0]), [0.45, -1.4], rtol=1e-6)
    np.testing.assert_allclose(_step(solver, w, [1.0, -1.0]), [-0.3475, -0.53], rtol=1e-6)
    # unclamped would be [1.271125, -2.0685]
    np.testing.assert_allclose(_step(solver, w, [-4.0, 4.0]), [1.0, -2.0], rtol=1e-6)
    state = solver.state()
    # the velocity keeps the unclamped step
    np.testing.assert_allclose(state["velocity.w"], [1.618625, -1.5385], rtol=1e-6)
    assert state["nb_iterations.w"] == 3
    assert w.value.dtype == np.float32


def test_plain_sgd_keeps_no_velocity_and_updates_in_place():
    solver = SGD(learning_rate=0.1, clamping=":0.25")
    w = _param([0.0, 1.0, -1.0])
    buffer = w.value
    np.testing.assert_allclose(_step(solver, w, [-2.0, 1.0, 3.0], 10), [0.2, 0.25, -1.3],
                               rtol=1e-6)
    assert w.value is buffer
    assert "velocity.w" not in solver.state()


def test_decay_alone_uses_the_velocity_path():
    solver = SGD(learning_rate=0.1, decay=0.5)
    w = _param([2.0])
    # v = -0.1*0 - 0.5*0.1*2 = -0.1 ; then v = 0*v - 0.05*1.9
    assert _step(solver, w, [0.0])[0] == pytest.approx(1.9)
    assert _step(solver, w, [0.0])[0] == pytest.approx(1.9 - 0.095)


def test_iteration_size_two_equals_one_step_on_the_summed_batches():
    g1, g2 = np.array([1.0, -3.0, 0.5]), np.array([2.0, 1.0, -0.5])
    kw = {"learning_rate": 0.3, "momentum": 0.9, "decay": 0.01}
    accumulating, reference = SGD(iteration_size=2, **kw), SGD(**kw)
    w, w_ref = _param([0.1, 0.2, 0.3]), _param([0.1, 0.2, 0.3])
    for _ in range(2):
        # first call of a pass changes nothing
        np.testing.assert_array_equal(_step(accumulating, w, g1), w_ref.value)
        _step(accumulating, w, g2)
        _step(reference, w_ref, (g1 + g2) / 2)  # mean over the 8 stimuli
        np.testing.assert_allclose(w.value, w_ref.value, rtol=1e-6)
    assert accumulating.state()["nb_iterations.w"] == 2


def test_iteration_size_counts_stimuli_for_step_decay():
    # batch 4, IterationSize 2: one update = 8 stimuli = one decay step.
    solver = SGD(learning_rate=1.0, iteration_size=2, learning_rate_policy="StepDecay",
                 learning_rate_step_size=8, learning_rate_decay=0.5)
    w = _param([0.0])
    deltas = []
    for _ in range(3):
        before = w.value[0]
        _step(solver, w, [0.0])
        _step(solver, w, [-1.0])  # mean over the two batches is -0.5
        deltas.append(w.value[0] - before)
    np.testing.assert_allclose(deltas, [0.5, 0.25, 0.125], rtol=1e-6)


def test_warm_up_rates_drive_the_steps():
    solver = SGD(learning_rate=1.0, learning_rate_policy="CosineDecay", max_iterations=6,
                 warm_up_duration=2, warm_up_lr_frac=0.5, learning_rate_step_size=4)
    w = _param([0.0])
    rates = []
    for _ in range(4):
        rates.append(solver.current_learning_rate(4))
        before = w.value[0]
        _step(solver, w, [-1.0], 4)
        assert w.value[0] - before == pytest.approx(rates[-1])
    # warm-up 0.5 -> 0.75, then cosine over 4 steps: 1, cos^2(pi/8)
    np.testing.assert_allclose(rates, [0.5, 0.75, 1.0, 0.5 * (1 + np.cos(np.pi / 4))])


def test_max_iterations_stops_the_counter_and_poly_reaches_zero():
    solver = SGD(learning_rate=1.0, decay=0.5, learning_rate_policy="PolyDecay",
                 max_iterations=2, power=1.0)
    w = _param([1.0])
    _step(solver, w, [0.0])  # rate 1: w -= 0.5*1*1
    _step(solver, w, [0.0])  # rate 0.5: v = 0 - 0.25*0.5
    assert w.value[0] == pytest.approx(0.375)
    for _ in range(3):  # rate 0: no update at all, not even decay
        _step(solver, w, [5.0])
    assert w.value[0] == pytest.approx(0.375)
    assert solver.state()["nb_iterations.w"] == 2


def test_zero_learning_rate_does_nothing():
    solver = SGD(learning_rate=0.0, momentum=0.9, decay=0.1)
    w = _param([1.0])
    _step(solver, w, [3.0])
    assert w.value[0] == 1.0 and solver.state() == {}


def test_each_param_has_its_own_counters():
    solver = SGD(learning_rate=1.0, learning_rate_policy="StepDecay", learning_rate_decay=0.5)
    a, b = _param([0.0], "a"), _param([0.0], "b")
    _step(solver, a, [-1.0], 1)
    _step(solver, a, [-1.0], 1)
    _step(solver, b, [-1.0], 1)
    assert (a.value[0], b.value[0]) == (1.5, 1.0)
    assert solver.current_learning_rate(1) == 0.25


def test_state_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    kw = {"learning_rate": 0.1, "momentum": 0.9, "decay": 1e-3, "iteration_size": 2,
          "clamping": "-1:1", "learning_rate_policy": "StepDecay", "learning_rate_step_size": 6}
    grads = rng.normal(size=(8, 3, 2)).astype(np.float32)
    first, w = SGD(**kw), _param(rng.normal(size=(3, 2)) * 0.5)
    for grad in grads[:3]:  # stop mid-pass so the gradient sum matters
        _step(first, w, grad, 3)
    second, w2 = SGD(**kw), _param(w.value.copy())
    second.load_state(first.state())
    for grad in grads[3:]:
        _step(first, w, grad, 3)
        _step(second, w2, grad, 3)
    np.testing.assert_array_equal(w.value, w2.value)
    assert first.state().keys() == second.state().keys()


def test_state_of_wrong_shape_is_refused():
    solver = SGD(momentum=0.9)
    solver.load_state({"velocity.w": np.zeros(3), "iteration_pass.w": 0, "nb_iterations.w": 0})
    with pytest.raises(ValueError, match="shape"):
        _step(solver, _param([1.0, 2.0]), [0.0, 0.0])


def test_unknown_state_entry_is_refused():
    with pytest.raises(ValueError, match="^unknown SGD state entry velocty.w; did you mean velocity"):
        SGD().load_state({"velocty.w": np.zeros(2)})


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="IterationSize"):
        SGD(iteration_size=0)
    with pytest.raises(ValueError, match="unknown LearningRatePolicy"):
        SGD(learning_rate_policy="Cosine")
