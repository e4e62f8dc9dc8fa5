"""`uplift ... --help` at 80 columns: standard metavars (PATH, TEXT, INTEGER, FLOAT), click's usage line, and
descriptions with room to read (not squeezed into a narrow column by a wide option name)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from uplift.cli import app

runner = CliRunner()
COMMANDS = sorted(typer.main.get_command(app).commands)
#: The narrowest description column a help screen may have at 80 columns (it was ~18 characters in `fit`).
MIN_DESCRIPTION = 32


def _help(args: list[str], monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    res = runner.invoke(app, [*args, "--help"], terminal_width=80)
    assert res.exit_code == 0, res.output
    return res.output


def test_every_command_is_covered():
    assert {"fit", "target", "report", "readout", "demo", "serve"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_uses_standard_metavars_and_leaves_room_for_descriptions(command, monkeypatch):
    text = _help([command], monkeypatch)
    assert max(len(line) for line in text.splitlines()) <= 80
    typer_metavar = r"<(?:str|int|float|bool|path|file|dir|datetime|list\[[^>\]]*\]|[a-z]+ range)>"
    assert not re.search(typer_metavar, text), f"typer metavar in `{command} --help`:\n{text}"
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage  # click's `DATA`, not typer 0.29's `{DATA}`
    params = typer.main.get_command(app).commands[command].params
    for param in params:
        if isinstance(param, typer.core.TyperArgument):
            assert re.search(rf"\b{param.name.upper()}\b", usage), usage
    row = next(line for line in text.splitlines() if "--help" in line and "Show this message" in line)
    width = len(row) - row.index("Show this message") - 1
    assert width >= MIN_DESCRIPTION, f"`{command} --help` leaves {width} characters for descriptions:\n{text}"
    for typed in re.findall(r"^│ [* ]*(?:[A-Z_]+ +)?(PATH|TEXT|INTEGER|FLOAT)\b", text, flags=re.M):
        assert typed in {"PATH", "TEXT", "INTEGER", "FLOAT"}


def test_arguments_show_their_type(monkeypatch):
    text = _help(["target"], monkeypatch)
    assert re.search(r"MODEL_DIR +PATH", text) and re.search(r"CUSTOMERS +PATH", text)


def test_command_list_wraps_each_summary_as_one_paragraph(monkeypatch):
    """typer's rich mode keeps a docstring's line breaks in the command list; each summary must flow instead
    (no line of a summary but its last ends short)."""
    text = _help([], monkeypatch)
    panel = text.split("Commands")[1]
    groups: list[list[str]] = []
    for line in panel.splitlines():
        m = re.match(r"│ (\S+)?\s+(.*?)\s*│$", line)
        if not m:
            continue
        if m.group(1):
            groups.append([])
        if groups:
            groups[-1].append(m.group(2))
    assert len(groups) == len(COMMANDS)
    width = max(len(line) for lines in groups for line in lines)
    for lines in groups:
        for line, after in zip(lines, lines[1:], strict=False):
            # broken early: the next line's first word would have fitted on this one
            assert len(line) + 1 + len(after.split()[0]) > width, f"a summary breaks early: {lines}"


def test_every_command_but_serve_takes_json_as_the_docs_say():
    root = typer.main.get_command(app)
    with_json = {name for name, cmd in root.commands.items() if any("--json" in p.opts for p in cmd.params)}
    assert set(root.commands) - with_json == {"serve"}
    index = (Path(__file__).resolve().parents[2] / "docs" / "index.md").read_text(encoding="utf-8")
    assert "Every command but `serve`" in " ".join(index.split()) and "--json" in index
