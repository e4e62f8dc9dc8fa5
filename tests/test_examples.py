"""The example notebooks and the quickstart run top to bottom.

Each notebook is executed in a fresh ``python3`` kernel on a small sample (``UPLIFT_SAMPLE``), inside a
temporary directory; nothing is written back to ``examples/``. The stored notebooks are also checked to be
the executed output of ``examples/_build_notebooks.py``, so an edited generator cannot ship stale notebooks.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
#: Customers per notebook in the test run: enough for every step to have data, small enough for ~30 s.
SMALL_SAMPLE = "4000"

nbformat = pytest.importorskip("nbformat")


def _builder():
    spec = importlib.util.spec_from_file_location("_build_notebooks", EXAMPLES / "_build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_notebook_is_tested_and_built():
    assert [p.stem for p in NOTEBOOKS] == sorted(_builder().NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("UPLIFT_SAMPLE", SMALL_SAMPLE)  # the kernel inherits this environment
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    # A failing cell raises CellExecutionError naming the cell and the traceback.
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=600, record_timing=False,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_notebook_is_the_executed_generator_output(path):
    stored = nbformat.read(path, as_version=4)
    built = _builder().build(path.stem)
    assert [c.source for c in stored.cells] == [c.source for c in built.cells], (
        f"{path.name} differs from examples/_build_notebooks.py: run python examples/_build_notebooks.py")
    code = [c for c in stored.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"{path.name} is stored without outputs"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"], f"{path.name} stored an error"


def test_quickstart_runs(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "Report written to" in done.stdout
