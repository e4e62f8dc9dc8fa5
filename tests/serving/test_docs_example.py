"""The executed example of docs/serving.md runs as written (fit, `uplift serve`, three requests, stop) and prints
the output the page shows (numbers compared to 6 significant digits)."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"
NUMBER = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")


def example() -> tuple[str, str]:
    section = DOC.read_text(encoding="utf-8").split("## An executed example", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    output = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    return code, output


def rounded(text: str) -> str:
    return NUMBER.sub(lambda m: f"{float(m.group()):.6g}", text)


def test_the_executed_example_prints_what_the_page_shows(tmp_path, monkeypatch):
    code, shown = example()
    monkeypatch.chdir(tmp_path)
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if not any((Path(p) / "uplift").exists() for p in os.environ["PATH"].split(os.pathsep)):
        pytest.skip("the `uplift` command is not on PATH (pip install -e .)")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})
    assert rounded(out.getvalue()) == rounded(shown)
