"""The stimuli clock: N2D2's Scheduler, its remainder carried, Moffett's delay."""

from n2prune.prune.clock import StimuliClock


def test_clock_fires_every_period_after_the_delay_with_the_remainder_carried():
    clock = StimuliClock(250)
    # counter: 100 200 300-250=50 150 250-250=0
    assert [clock.tick(100) for _ in range(5)] == [False, False, True, False, True]
    assert clock.counter == 0 and clock.stimuli_to_fire() == 250
    moffett = StimuliClock(10, delay=100)  # pretrain_step 100, frequency 10
    fired = [t for t in range(1, 131) if moffett.tick(1)]
    assert fired == [110, 120, 130]
    every = StimuliClock(0)  # no period: every batch, as N2D2's Python API
    assert all(every.tick(16) for _ in range(3))
    late = StimuliClock(10, delay=25)
    assert not late.tick(30) and late.stimuli_to_fire() == 5
