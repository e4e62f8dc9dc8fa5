"""The README's demo-data commands run exactly as written (issue 3: segments, explain, target on the demo data).

The block under "Use it on the demo data" is parsed from README.md and every `uplift ...` line is run, in order,
through the typer app in a temporary directory. The full 5-fold demo takes about a minute on two cores.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from uplift.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_demo_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Use it on the demo data", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            words = shlex.split(line)
            assert words[0] == "uplift", line
            commands.append(words[1:])
    return commands


def test_readme_has_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert "pip install -e . && uplift demo" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = 'pip install -e ".[test]" && python -m pytest -q -n 2'
    assert test_cmd in text and test_cmd in ci


def test_readme_demo_commands_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = readme_demo_commands()
    assert [c[0] for c in commands] == ["demo", "segments", "explain", "target", "report"]
    for args in commands:
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, f"uplift {' '.join(args)} failed:\n{res.output}"
    data = pd.read_csv("hillstrom.csv")
    assert len(data) == 64_000
    # At $7 a visit most customers are worth a $0.10 e-mail, so the $1,280 budget binds: 12,800 e-mails, of
    # which the 10% holdout keeps 1,280 back.
    targets = pd.read_csv("targets.csv")
    assert len(targets) == 12_800 and targets["selected"].all()
    assert targets["cost"].sum() == pytest.approx(1280.0)
    assert targets["holdout"].sum() == 1280 and targets["send"].sum() == 11_520
    assert (targets["send"] == ~targets["holdout"]).all()
    assert Path("shap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path("report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # The saved study answers --json questions too: the visit ATEs are Hillstrom's published differences in
    # means (+7.66 pp for the men's e-mail, +4.52 pp for the women's; tests/data/test_datasets.py).
    res = CliRunner().invoke(app, ["evaluate", "hillstrom-model", "--json"])
    assert res.exit_code == 0
    ate = {(r["arm"], r["outcome"], r["estimand"]): r for r in json.loads(res.stdout)["ate"]}
    for arm, pp in (("Mens E-Mail", 7.66), ("Womens E-Mail", 4.52)):
        row = ate[(arm, "visit", "ATE")]
        assert round(100 * row["estimate"], 2) == pp and row["lower"] > 0, row
