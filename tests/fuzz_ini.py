"""Mutation fuzzing of ``n2prune check``: every mutant builds or fails in one clean line.

Each case takes one seed INI file (every ``models_ini/`` recipe and N2D2's own
test files when present), applies one to three random mutations (lines
deleted, duplicated or swapped, characters flipped, junk keys, huge and
negative numbers, unicode, NUL bytes, long lines, deep ``$()``), writes it
under its own name and runs ``n2prune check`` on it in this process, under a
time cap per case and an address-space cap for the whole campaign. A case
passes when ``check`` exits 0, or exits 2 with one ``error:`` line naming
``<mutant file>:<line>`` and no traceback.

Run from a test (tests/test_fuzz.py) or by hand::

    python tests/fuzz_ini.py --cases 3000 --seed 7 --keep /tmp/mutants
"""

import argparse
import contextlib
import io
import json
import re
import resource
import signal
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from paths import MODELS_INI, N2D2_MODELS

from n2prune import cli

UNICODE = ["é", "\u202e", "\u2066", "\u200b", "\U0001f600", "\u0301", "ß", "\ufeff", "\r"]
NUMBERS = ["0", "-1", "-7", "2147483648", "-2147483649", "1e308", "1e999", "nan", "inf",
           "-inf", "0.0000001", "99999999999", "4" * 400, "1" * 40 + ".5"]
NUMBER = re.compile(rb"(?<![\w.])\d+(\.\d+)?")


class CaseTimeout(BaseException):
    """Raised by SIGALRM inside a case: a BaseException, so no ``except Exception`` eats it."""


def seed_files():
    files = sorted(MODELS_INI.glob("*.ini"))
    if N2D2_MODELS.is_dir():
        files += sorted(N2D2_MODELS.glob("*.ini"))
    return files


# -- mutations: bytes -> bytes --------------------------------------------

def _lines(data):
    return data.split(b"\n")


def delete_line(data, rng):
    lines = _lines(data)
    del lines[rng.integers(len(lines))]
    return b"\n".join(lines)


def duplicate_line(data, rng):
    lines = _lines(data)
    i = rng.integers(len(lines))
    lines.insert(i, lines[i])
    return b"\n".join(lines)


def swap_lines(data, rng):
    lines = _lines(data)
    i, j = rng.integers(len(lines), size=2)
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def flip_character(data, rng):
    if not data:
        return data
    i = rng.integers(len(data))
    return data[:i] + bytes([rng.integers(256)]) + data[i + 1:]


def junk_key(data, rng):
    lines = _lines(data)
    lines.insert(rng.integers(len(lines) + 1), b"Junk%d=zz%d" % (rng.integers(99), rng.integers(9)))
    return b"\n".join(lines)


def strange_number(data, rng):
    found = list(NUMBER.finditer(data))
    if not found:
        return data
    match = found[rng.integers(len(found))]
    value = NUMBERS[rng.integers(len(NUMBERS))].encode()
    return data[:match.start()] + value + data[match.end():]


def insert_unicode(data, rng):
    i = rng.integers(len(data) + 1)
    return data[:i] + UNICODE[rng.integers(len(UNICODE))].encode() + data[i:]


def insert_nul(data, rng):
    i = rng.integers(len(data) + 1)
    return data[:i] + b"\0" + data[i:]


def long_line(data, rng):
    lines = _lines(data)
    i = rng.integers(len(lines))
    lines[i] += b"9" * int(rng.integers(1000, 300_000))
    return b"\n".join(lines)


def deep_expression(data, rng):
    found = list(NUMBER.finditer(data))
    if not found:
        return data
    match, depth = found[rng.integers(len(found))], int(rng.integers(50, 8000))
    nested = [b"$(" + b"(" * depth + match[0] + b")" * depth + b")",
              b"$(" + b"-" * depth + match[0] + b")",
              b"$(" * depth + match[0] + b")" * depth,
              b"$(round(1, -10**8))", b"$(9**9**9)"][rng.integers(5)]
    return data[:match.start()] + nested + data[match.end():]


def truncate(data, rng):
    return data[:rng.integers(len(data) + 1)]


MUTATIONS = [delete_line, duplicate_line, swap_lines, flip_character, junk_key, strange_number,
             insert_unicode, insert_nul, long_line, deep_expression, truncate]


def mutate(data, rng):
    names = []
    for _ in range(rng.integers(1, 4)):
        mutation = MUTATIONS[rng.integers(len(MUTATIONS))]
        data = mutation(data, rng)
        names.append(mutation.__name__)
    return data, names


# -- one case -------------------------------------------------------------

def _on_alarm(signum, frame):
    raise CaseTimeout


def run_check(path, seconds):
    """(exit code or None, stdout, stderr, problem or None) of ``n2prune check path``."""
    out, err = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(seconds)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["check", str(path)])
    except CaseTimeout:
        return None, out.getvalue(), err.getvalue(), f"no answer within {seconds} s"
    except BaseException as exc:  # noqa: BLE001  (every escape is a finding)
        return None, out.getvalue(), err.getvalue(), f"{type(exc).__name__}: {exc}"[:300]
    finally:
        signal.alarm(0)
    return code, out.getvalue(), err.getvalue(), None


def judge(path, code, stderr):
    """None when the outcome is clean, else what is wrong with it."""
    if code == 0:
        return None
    if code != 2:
        return f"exit code {code}"
    lines = stderr.rstrip("\n").split("\n")
    errors = [line for line in lines if line.startswith("error: ")]
    if len(errors) != 1 or errors[0] != lines[-1] or "Traceback" in stderr:
        return f"not one error line: {stderr[-300:]!r}"
    if not re.search(re.escape(str(path)) + r":\d+", errors[0]):
        return f"no file:line: {errors[0][:300]!r}"
    return None


def campaign(cases, seed, seconds, keep):
    """Run ``cases`` mutants; returns the list of findings (dicts)."""
    rng = np.random.default_rng(seed)
    seeds = seed_files()
    keep.mkdir(parents=True, exist_ok=True)
    findings = []
    for case in range(cases):
        source = seeds[rng.integers(len(seeds))]
        data, names = mutate(source.read_bytes(), rng)
        path = keep / f"case{case:05d}" / source.name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        code, _, stderr, problem = run_check(path, seconds)
        problem = problem or judge(path, code, stderr)
        if problem:
            findings.append({"case": case, "file": str(path), "from": source.name,
                             "mutations": names, "problem": problem})
    return findings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=int, default=20, help="time cap per case")
    parser.add_argument("--memory-gb", type=float, default=6.0, help="address-space cap")
    parser.add_argument("--keep", type=Path, required=True, help="folder for the mutants")
    args = parser.parse_args(argv)
    cap = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    findings = campaign(args.cases, args.seed, args.seconds, args.keep)
    print(json.dumps({"cases": args.cases, "findings": findings}, indent=1))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
