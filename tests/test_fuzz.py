"""Fuzzing ``n2prune check`` with mutated INI files (tests/fuzz_ini.py).

A few hundred cases with a fixed seed in every run; ``--runslow`` runs
thousands. The campaign runs in a child process so that its address-space
cap (6 GB, as the issue's probe) binds the mutants and not pytest.
"""

import json
import subprocess
import sys

import pytest
from paths import ROOT

FUZZER = ROOT / "tests" / "fuzz_ini.py"


def _campaign(tmp_path, cases, seed):
    result = subprocess.run([sys.executable, str(FUZZER), "--cases", str(cases), "--seed", str(seed),
                             "--keep", str(tmp_path)], capture_output=True, text=True,
                            check=False, timeout=60 + cases * 5)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["cases"] == cases
    return report["findings"]


def test_mutants_build_or_fail_in_one_line(tmp_path):
    findings = _campaign(tmp_path, cases=150, seed=0)
    assert not findings, json.dumps(findings[:10], indent=1)


@pytest.mark.slow
def test_thousands_of_mutants(tmp_path):
    findings = _campaign(tmp_path, cases=3000, seed=1)
    assert not findings, json.dumps(findings[:10], indent=1)
