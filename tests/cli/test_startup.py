"""Start-up: `uplift --version`, `--help` and a one-line input error must not pay for the heavy libraries.

scipy.stats, scikit-learn, LightGBM, matplotlib and shap together cost ~1.5 s of CPU before a command does
anything; they are imported inside the functions that use them (tests/test_architecture.py allows that for
them). These tests look at which modules a fresh interpreter has loaded, not at the clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Libraries no command may load before it needs them (a module or any of its submodules).
HEAVY = ("scipy", "sklearn", "lightgbm", "matplotlib", "shap", "numba", "PIL", "econml", "causalml", "dowhy")

_PROBE = """
import atexit, json, sys
def report():
    heavy = sorted(set(m.split('.')[0] for m in sys.modules) & set(HEAVY))
    sys.__stdout__.write('\\nLOADED=' + json.dumps(heavy) + '\\n')
    sys.__stdout__.flush()
atexit.register(report)
sys.argv = ['uplift', *ARGV]
BODY
"""


def _loaded(argv: list[str], body: str = "from uplift.cli import main; main()") -> tuple[list[str], str, str]:
    code = _PROBE.replace("HEAVY", repr(HEAVY)).replace("ARGV", repr(argv)).replace("BODY", body)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)
    out, _, tail = proc.stdout.rpartition("\nLOADED=")
    assert tail, f"the probe did not report (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(tail), out, proc.stderr


def test_importing_the_cli_loads_no_heavy_library():
    loaded, _, _ = _loaded([], body="import uplift.cli")
    assert loaded == [], f"`import uplift.cli` loaded {loaded}: import them inside the functions that use them"


def test_version_loads_no_heavy_library():
    loaded, out, _ = _loaded(["--version"])
    assert out.strip().startswith("uplift ")
    assert loaded == []


def test_a_one_line_input_error_loads_no_heavy_library(tmp_path):
    missing = tmp_path / "missing.csv"
    loaded, _, err = _loaded(["fit", str(missing), "--treatment", "t", "--outcome", "y",
                              "--out", str(tmp_path / "model")])
    assert "missing.csv" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert loaded == []


@pytest.mark.parametrize("command", ["fit", "target", "report", "readout", "demo"])
def test_help_loads_no_heavy_library(command):
    loaded, out, _ = _loaded([command, "--help"])
    assert "Usage" in out
    assert loaded == []


def test_the_lazy_imports_still_work():
    """The code paths behind the lazy imports run in a fresh interpreter (a name missing from a function's own
    imports would only show up here or in a fit)."""
    body = (
        "import numpy as np\n"
        "from uplift import simulate_campaign, Study\n"
        "df = simulate_campaign(1500, seed=3)\n"
        "truth = [c for c in df if c.startswith(('true_', 'propensity'))] + ['revenue']\n"
        "s = Study(df, 'treatment', 'conversion', id='customer_id', exclude=truth).fit(['t', 'dr_linear'],"
        " n_folds=2, n_boot=10)\n"
        "print('ATE', round(float(s.ate().iloc[0]['estimate']), 6))\n"
    )
    loaded, out, err = _loaded([], body=body)
    assert "ATE" in out, err[-2000:]
    assert {"scipy", "sklearn", "lightgbm"} <= set(loaded)
