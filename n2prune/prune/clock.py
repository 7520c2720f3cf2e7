"""When masks may change: N2D2's Scheduler, counting stimuli (``schedules`` says by how much)."""


class StimuliClock:
    """N2D2's Scheduler: fires every ``period`` stimuli, after ``delay`` stimuli.

    ``tick(n)`` adds ``n`` stimuli to ``counter``; the first ``delay_left``
    are consumed first (Moffett's ``pretrain_step``). Reaching ``period``
    subtracts it (the remainder is carried) and fires; ``period`` 0 fires at
    every tick, as N2D2's Python API.
    """

    def __init__(self, period, delay=0):
        self.period, self.delay_left, self.counter = int(period), int(delay), 0

    def tick(self, stimuli):
        """Count ``stimuli`` (a batch); True when a fire is due."""
        self.counter += int(stimuli)
        if self.delay_left:
            consumed = min(self.delay_left, self.counter)
            self.delay_left -= consumed
            self.counter -= consumed
        if self.delay_left or self.counter < self.period:
            return False
        self.counter -= self.period
        return True

    def stimuli_to_fire(self):
        """Stimuli before the next fire is due."""
        return self.delay_left + max(0, self.period - self.counter)
