"""What a user sees while training: a plain log line every N steps.

Lines have a fixed order and units so they can be grepped::

    step 100/3750 ep 0.27 loss 0.312 acc 0.912 val - lr 0.05000 10234 samples/s 12.3s

``acc`` is the network's metric (``mse`` for a ``DataAsTarget=1`` target).
They go to stdout and to ``train.log``; ``metrics.csv`` gets the same numbers.
When stderr is a terminal and tqdm is installed, a progress bar runs too.
"""

import sys
import time

from n2prune.prune.pruned_cells import cell_sparsities, mean_sparsity


def _tqdm_bar(total):
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="batch", leave=False, file=sys.stderr)


class Progress:
    def __init__(self, run, log_every, total_steps, steps_per_epoch, network):
        self.run = run
        self.network = network
        self.log_every = log_every
        self.total = total_steps
        self.steps_per_epoch = steps_per_epoch
        self.metric = network.metric_target.metric
        self.window = [0.0, 0, 0]   # loss sum, score sum, samples since the last line
        self.window_steps = 0
        self.started = time.perf_counter()
        self.window_started = self.started
        self.val = None
        self.bar = _tqdm_bar(total_steps)

    def line(self, text):
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)
        self.run.log(text)

    def batch(self, state, loss, score, size, lr):
        """``score``: the batch's summed metric (correct samples, or summed squared errors)."""
        self.window[0] += loss
        self.window[1] += score
        self.window[2] += size
        self.window_steps += 1
        if self.bar is not None:
            self.bar.update(1)
        if state.step % self.log_every == 0:
            self.emit(state, lr)

    def emit(self, state, lr):
        if not self.window_steps:
            return
        now = time.perf_counter()
        loss = self.window[0] / self.window_steps
        value = self.window[1] / max(self.window[2], 1)
        speed = self.window[2] / max(now - self.window_started, 1e-9)
        epoch = state.epoch + state.batch / self.steps_per_epoch
        sparsity = mean_sparsity(self.network)
        shown = "" if sparsity is None else f" sparsity {sparsity:.3f}"
        column, fmt = self.metric.column, self.metric.format
        self.line(f"step {state.step}/{self.total} ep {epoch:.2f} loss {loss:.4f} {column} "
                  f"{fmt(value)} val {fmt(self.val)}{shown} lr {lr:.5g} {speed:.0f} samples/s "
                  f"{now - self.started:.1f}s")
        self.run.metrics_row({"step": state.step, "epoch": f"{epoch:.3f}", "loss": f"{loss:.6f}",
                              column: f"{value:.6f}",
                              f"val_{column}": "" if self.val is None else self.val,
                              "lr": f"{lr:.6g}", "seconds": f"{now - self.started:.3f}",
                              "samples_per_s": f"{speed:.1f}", **self.sparsity_columns()})
        self.window, self.window_steps, self.window_started = [0.0, 0, 0], 0, now

    def epoch_end(self, state, val, lr):
        self.val = val
        self.emit(state, lr)
        self.line(f"epoch {state.epoch}/{state.epochs} done: validation {self.metric.title} "
                  f"{self.metric.format(val)}")
        self.run.metrics_row({"step": state.step, "epoch": state.epoch,
                              f"val_{self.metric.column}": "" if val is None else val,
                              "lr": f"{lr:.6g}",
                              "seconds": f"{time.perf_counter() - self.started:.3f}",
                              **self.sparsity_columns()})

    def sparsity_columns(self):
        return {f"sparsity_{name}": f"{value:.6f}"
                for name, value in cell_sparsities(self.network).items()}

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
