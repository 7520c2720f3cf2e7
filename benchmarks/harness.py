"""The one timing harness every benchmark uses: machine report, quiet check,
alternated sides, medians and spread, JSON output.

Import it before numpy: it pins the thread counts (``BENCH_THREADS``,
default 2) through the environment, which numpy, numba and OpenMP read only
when they load. A value the user set wins.

Quiet rule (``Session.quiet_check``, run before and after each comparison):

- the 1-minute load average must be below ``0.3 + own``, where ``own`` is
  the CPU time our own process tree used over the last minute divided by 60
  (what our benchmark itself adds to the load average);
- while the check sleeps, the runnable-task count of /proc/loadavg (minus
  the reader itself) must be 0 in at least 90% of 20 samples: someone else
  is running right now otherwise;
- a calibration GEMM (numpy float32 512x512x512, 1 thread, best of 15 in a
  fresh process) must stay within 10% of its first measurement in the run.
  The same GEMM on ``threads`` threads (median of 9) is reported, not
  judged: on the 2-vCPU reference VM it drifted by 12-84% between checks
  with nothing else running (the hypervisor's vCPU placement), so a rule
  on it flagged every comparison. The 1-thread best-of stayed within
  2.79-2.90 ms over the 800 checks of the 2026-12-03 run.

A comparison that fails any of these before or after is flagged CONTENDED,
and the run's summary says it is not fit for the docs.
"""

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
for _name in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, str(THREADS))
# What the n2prune command gets (n2prune/__init__.py); here numpy may load first.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

# Workers start from the environment as it is now: importing n2prune in the
# parent sets OMP_WAIT_POLICY=PASSIVE (n2prune/kernels/__init__.py), which
# must not leak into a PyTorch worker. Each side sets its own when it loads.
WORKER_ENV = dict(os.environ)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a source checkout, not installed
    sys.path.insert(0, str(ROOT))

LOAD_BASE = 0.3
CALIBRATION_TOLERANCE = 0.10
MIN_ROUNDS = 5  # fewer is a check that the script runs, not a measurement
SAMPLE_MARK = "HARNESS-SAMPLE "
THREAD_VARS = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "OPENBLAS_THREAD_TIMEOUT", "MKL_NUM_THREADS", "OMP_WAIT_POLICY",
               "NUMBA_CPU_FEATURES", "BENCH_THREADS")


# -- machine report ------------------------------------------------------
def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "?"


def installed_version(package):
    """A package's version without importing it (torch would start its OpenMP pool)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _blas():
    try:
        from threadpoolctl import threadpool_info
        return "; ".join(f"{i['internal_api']} {i.get('version')} {i['num_threads']} threads"
                         for i in threadpool_info())
    except ImportError:
        import numpy as np
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} (numpy build; threadpoolctl absent)"


def machine_report(extra=None):
    """Several lines: CPU, memory, versions, date (UTC) and thread settings.

    ``extra`` (dict) adds settings the benchmark chose, e.g. torch threads.
    """
    import numpy as np
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = ", ".join(f"{k}={WORKER_ENV.get(k, '-')}" for k in THREAD_VARS)
    lines = [
        (f"# machine: {_cpu_model()}, {cores} usable cores of {os.cpu_count()}, "
         f"{_memory_gib()} RAM, {platform.system()} {platform.release()}"),
        (f"# python {platform.python_version()}, numpy {np.__version__} ({_blas()}), "
         f"numba {installed_version('numba')}, torch {installed_version('torch')}, "
         f"sparseprop {installed_version('sparseprop')}"),
        f"# date {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC",
        ("# threads (workers start with these; n2prune sets OMP_WAIT_POLICY=PASSIVE "
         f"in its own process when unset): {env}"),
    ]
    if extra:
        lines.append("# " + ", ".join(f"{k}={v}" for k, v in extra.items()))
    return "\n".join(lines)


# -- quiet check ---------------------------------------------------------
CALIBRATION_CODE = """
import sys, time, numpy as np
repeats, pick = int(sys.argv[1]), int(sys.argv[2])
a = np.random.default_rng(0).random((512, 512), dtype=np.float32)
a @ a
times = []
for _ in range(repeats):
    t = time.perf_counter(); a @ a; times.append(time.perf_counter() - t)
print(sorted(times)[pick])
"""


def calibration_gemm(threads, best_of=False):
    """Seconds of a 512^3 float32 GEMM in a fresh process with ``threads`` BLAS
    threads: the best of 15 runs, or the median of 9."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    repeats, pick = (15, 0) if best_of else (9, 4)
    out = subprocess.run([sys.executable, "-c", CALIBRATION_CODE, str(repeats), str(pick)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def others_running(samples=20, interval=0.05):
    """Fraction of samples where some other task was runnable (we sleep in between)."""
    busy = 0
    for _ in range(samples):
        running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        busy += running > 1  # the reading task counts itself
        time.sleep(interval)
    return busy / samples


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Session:
    """Calibration state of one benchmark run and its comparisons."""

    def __init__(self, threads=THREADS):
        self.threads = threads
        self.reference = None       # first calibration: {threads: seconds}
        self.cpu_marks = [(time.monotonic(), own_cpu_seconds())]
        self.comparisons = []
        self._group = None          # the quiet check before the open group, if any

    def own_load(self):
        """CPU seconds our process tree used over about the last minute, per second."""
        now, cpu = time.monotonic(), own_cpu_seconds()
        self.cpu_marks.append((now, cpu))
        old = [m for m in self.cpu_marks if now - m[0] >= 60]
        then, cpu_then = old[-1] if old else self.cpu_marks[0]
        self.cpu_marks = [m for m in self.cpu_marks if now - m[0] < 120]
        return (cpu - cpu_then) / max(now - then, 60.0)

    def settled_load(self, max_wait=180, step=5):
        """(own load, load, others runnable), waiting while only the load average is high.

        The 1-minute load average decays with a one-minute time constant, so
        the previous benchmark's own processes keep it above the limit for a
        minute or two although nothing runs: wait for it instead of flagging.
        """
        deadline = time.monotonic() + max_wait
        while True:
            own, load, busy = self.own_load(), os.getloadavg()[0], others_running()
            if load < LOAD_BASE + own or busy > 0.1 or time.monotonic() >= deadline:
                return own, load, busy
            time.sleep(step)

    def quiet_check(self):
        """A dict of the measures and the list of reasons the machine is not quiet."""
        own, load, busy = self.settled_load()
        gemm = {1: calibration_gemm(1, best_of=True)}
        if self.reference is None:
            self.reference = gemm
        reasons = []
        if load >= LOAD_BASE + own:
            reasons.append(f"load {load:.2f} >= {LOAD_BASE} + own {own:.2f}")
        if busy > 0.1:
            reasons.append(f"others runnable in {busy:.0%} of samples")
        drift = gemm[1] / self.reference[1] - 1
        if abs(drift) > CALIBRATION_TOLERANCE:
            reasons.append(f"GEMM 1t {1e3 * gemm[1]:.2f} ms ({drift:+.0%} of first)")
        if self.threads > 1:  # reported only (see the module docstring)
            gemm[self.threads] = calibration_gemm(self.threads)
        return {"load1": load, "own_load": own, "others_runnable": busy,
                "gemm_ms": {str(n): 1e3 * s for n, s in gemm.items()}, "reasons": reasons}

    def compare(self, label, sides, rounds=5, primary="seconds", lower_is_better=True,
                references=None):
        """Quiet check, ``alternate(sides, rounds)``, quiet check; the comparison is kept.

        ``references`` (default: the last side) are the sides every side's
        speed-up is reported against.
        """
        before = self._group or self.quiet_check()
        samples = alternate(sides, rounds)
        comparison = {"label": label, "primary": primary, "lower_is_better": lower_is_better,
                      "references": list(references or list(sides)[-1:]),
                      "samples": samples, "rounds": rounds}
        self.comparisons.append(comparison)
        if self._group is None:
            _set_checks(comparison, before, self.quiet_check())
        return comparison

    @contextlib.contextmanager
    def group(self):
        """Comparisons made inside share one quiet check before and one after.

        For many short comparisons (kernels), where a check per comparison
        (about 2 s) would cost more than the measurements.
        """
        self._group = self.quiet_check()
        first = len(self.comparisons)
        try:
            yield self
        finally:
            before, self._group = self._group, None
        after = self.quiet_check()
        for comparison in self.comparisons[first:]:
            _set_checks(comparison, before, after)


def _set_checks(comparison, before, after):
    reasons = [f"before: {r}" for r in before["reasons"]]
    reasons += [f"after: {r}" for r in after["reasons"]]
    comparison.update(before=before, after=after, contended=bool(reasons), reasons=reasons)


# -- measuring -----------------------------------------------------------
def _as_sample(value):
    return value if isinstance(value, dict) else {"seconds": float(value)}


def alternate(sides, rounds=5):
    """Run the sides A B A B ... ``rounds`` times; ``{side: [sample dict, ...]}``.

    ``sides`` is an ordered dict name -> callable measuring one sample: it
    returns seconds or a dict of metrics. Alternating spreads a noisy spell
    of the machine over every side instead of charging it to one.
    """
    samples = {name: [] for name in sides}
    for _ in range(rounds):
        for name, measure in sides.items():
            samples[name].append(_as_sample(measure()))
    return samples


def seconds_per_call(fn, min_seconds=0.02, warmup=3):
    """Mean seconds per call of ``fn``, looped for at least ``min_seconds``."""
    for _ in range(warmup):
        fn()
    count, start = 0, time.perf_counter()
    while True:
        fn()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / count


def call_rate(call, calls, batch, warmup=10):
    """``{"s/call", "samples/s"}`` of ``calls`` calls of ``call`` (``batch`` samples each)
    after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    seconds = (time.perf_counter() - start) / calls
    return {"s/call": seconds, "samples/s": batch / seconds}


def step_rate(step, steps, batch, warmup=5):
    """``{"s/step", "samples/s"}`` of ``steps`` calls of ``step`` after ``warmup`` untimed ones."""
    rate = call_rate(step, steps, batch, warmup)
    return {"s/step": rate["s/call"], "samples/s": rate["samples/s"]}


def in_subprocess(script, args, env=None):
    """One sample measured by ``python script *args`` in a fresh process.

    For sides that must not share a process: PyTorch and numba share one
    OpenMP runtime whose busy-waiting threads slow both. The script prints
    its sample with ``emit``; the last such line is returned.
    """
    cmd = [sys.executable, str(script), *map(str, args)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True,
                          env=WORKER_ENV if env is None else env)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(SAMPLE_MARK)]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed no sample:\n{done.stdout[-2000:]}")
    return json.loads(lines[-1][len(SAMPLE_MARK):])


def emit(sample):
    """Print a sample (seconds or dict of metrics) for ``in_subprocess`` to read."""
    print(SAMPLE_MARK + json.dumps(_as_sample(sample)), flush=True)


# -- reporting -----------------------------------------------------------
def _stats(values):
    values = sorted(values)
    return statistics.median(values), values[0], values[-1]


def speedup(comparison, side, reference):
    """How many times better ``side`` is than ``reference`` (median over median, primary metric)."""
    primary = comparison["primary"]
    ours = statistics.median(s[primary] for s in comparison["samples"][side])
    theirs = statistics.median(s[primary] for s in comparison["samples"][reference])
    if not ours or not theirs:
        return None
    return theirs / ours if comparison["lower_is_better"] else ours / theirs


def summary_rows(comparison):
    """Per side: median and min-max of the primary metric, medians of the others, speed-ups."""
    primary = comparison["primary"]
    rows = []
    for side, samples in comparison["samples"].items():
        med, low, high = _stats([s[primary] for s in samples])
        others = {k: statistics.median(s[k] for s in samples) for k in samples[0] if k != primary}
        ratios = {ref: speedup(comparison, side, ref) for ref in comparison["references"]}
        rows.append({"side": side, "median": med, "min": low, "max": high, "n": len(samples),
                     "speedup_vs": ratios, "other_medians": others})
    return rows


def _fmt(value):
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _print_table(c):
    flag = "CONTENDED: " + "; ".join(c["reasons"]) if c["contended"] else "quiet"
    print(f"\n{c['label']}  [{flag}]")
    # A column per reference, wide enough for its name (two spaces apart).
    widths = [max(16, len(ref) + 4) for ref in c["references"]]
    ratio_heads = "".join(f"{'x ' + ref:>{w}}" for ref, w in zip(c["references"], widths))
    print(f"  {'side':<24} {'median ' + c['primary']:>16} {'min - max':>23} {'n':>3}"
          f"{ratio_heads}  other medians")
    for r in summary_rows(c):
        ratios = "".join(f"{_fmt(v):>{w}}" for v, w in zip(r["speedup_vs"].values(), widths))
        others = ", ".join(f"{k} {_fmt(v)}" for k, v in r["other_medians"].items())
        print(f"  {r['side']:<24} {_fmt(r['median']):>16} "
              f"{_fmt(r['min']) + ' - ' + _fmt(r['max']):>23} {r['n']:>3}{ratios}  {others}")


def _print_line(c):
    """One line: each side's median [min-max] and its speed-ups, then the flag."""
    parts = []
    for r in summary_rows(c):
        ratios = " ".join(f"x{_fmt(v)}" for ref, v in r["speedup_vs"].items() if ref != r["side"])
        parts.append(f"{r['side']} {_fmt(r['median'])} [{_fmt(r['min'])}-{_fmt(r['max'])}]"
                     + (f" {ratios}" if ratios else ""))
    flag = "  CONTENDED" if c["contended"] else ""
    print(f"{c['label']:<40} {c['primary']}: " + " | ".join(parts) + flag, flush=True)


def report(session_or_comparisons, json_path=None, machine=None, compact=False):
    """Print one table per comparison and the run's verdict; write JSON if asked.

    Columns ``x REF``: each side's speed-up over a reference side on the
    primary metric (median over median; >1 means the side is better).
    Spread: min-max of the primary metric over the rounds. ``compact``: one
    line per comparison (many small comparisons).
    """
    comparisons = getattr(session_or_comparisons, "comparisons", session_or_comparisons)
    for c in comparisons:
        (_print_line if compact else _print_table)(c)
    reasons = sorted({r for c in comparisons for r in c["reasons"]})
    if compact and reasons:
        print("\nquiet-check failures: " + "; ".join(reasons))
    contended = [c["label"] for c in comparisons if c["contended"]]
    few = [c["label"] for c in comparisons if c.get("rounds", MIN_ROUNDS) < MIN_ROUNDS]
    print()
    if few:
        print(f"TOO FEW ROUNDS: {len(few)} comparisons ran fewer than {MIN_ROUNDS} rounds; "
              "a check of the script, NOT fit for the docs.")
    if contended:
        print(f"RUN CONTENDED: {len(contended)} of {len(comparisons)} comparisons measured on a "
              "busy machine; these numbers are NOT fit for the docs.")
    else:
        print(f"run quiet: all {len(comparisons)} comparisons passed the quiet check.")
    if json_path:
        record = {"machine": machine, "contended": bool(contended), "too_few_rounds": bool(few),
                  "comparisons": [dict(c, summary=summary_rows(c)) for c in comparisons]}
        Path(json_path).write_text(json.dumps(record, indent=1))
        print(f"wrote {json_path}")
    return not (contended or few)


def start(extra=None):
    """Print the machine report (with ``extra``); returns it and a new ``Session``."""
    machine = machine_report(extra)
    print(machine, flush=True)
    return machine, Session()


def torch_installed():
    return installed_version("torch") != "not installed"


def subprocess_sides(script, jobs):
    """Per label of ``jobs`` (label -> JSON-able job), a side that measures one
    sample by ``python script --one JOB`` in a fresh process (``in_subprocess``)."""
    return {label: (lambda job=job: in_subprocess(script, ["--one", json.dumps(job)]))
            for label, job in jobs.items()}


def parse_or_sample(parser, argv, one_sample, rounds=5):
    """``parser``'s arguments, with the common ones (``add_common_args``) and the
    hidden ``--one JOB`` of ``subprocess_sides``; None when this process was
    such a child, which has then emitted ``one_sample(JOB)``."""
    parser.add_argument("--one", help=argparse.SUPPRESS)
    add_common_args(parser, rounds)
    args = parser.parse_args(argv)
    if args.one:
        emit(one_sample(json.loads(args.one)))
        return None
    return args


def add_common_args(parser, rounds=5):
    """``--rounds`` and ``--json FILE``, the options every benchmark takes."""
    parser.add_argument("--rounds", type=int, default=rounds,
                        help=f"alternated rounds per comparison (default {rounds})")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return parser
