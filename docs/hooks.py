"""MkDocs hooks: pages that are assembled from files outside ``docs/`` at build time.

* ``benchmarks.md`` -- the line ``<!-- benchmark-results -->`` is replaced by every ``benchmarks/results/*.md``,
  in file-name order, so a new result file appears on the site without editing the docs.
* ``examples/`` -- every ``examples/*.ipynb`` is published twice: as a page ``examples/<name>.md`` (markdown
  cells, code and stored outputs, figures embedded) and as the notebook file itself, for download;
  ``examples/quickstart.py`` is published for download too. In ``examples.md``, links written for GitHub
  readers (``../examples/<name>.ipynb``) are pointed at the rendered pages, other ``../examples/`` links at the
  published copies.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
EXAMPLES = ROOT / "examples"
MARKER = "<!-- benchmark-results -->"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ------------------------------------------------------------------------------------------------ benchmarks
def benchmark_results() -> str:
    """Every results file, each under a note naming it; a sentence when there are none."""
    parts = []
    for path in sorted(RESULTS.glob("*.md")):
        text = path.read_text(encoding="utf-8").strip()
        parts.append(f"{text}\n\n*Source: `benchmarks/results/{path.name}`.*\n")
    return "\n---\n\n".join(parts) if parts else "*No benchmark results have been recorded yet.*\n"


# ------------------------------------------------------------------------------------------------ notebooks
def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _fence(text: str, lang: str = "text") -> str:
    text = _ANSI.sub("", text).rstrip("\n")
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text}\n{ticks}\n"


def _output(out: dict) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        return _fence(_text(out.get("text", "")))
    if kind == "error":
        return _fence("\n".join(out.get("traceback", [])) or f"{out.get('ename')}: {out.get('evalue')}")
    data = out.get("data", {})
    if "image/png" in data:
        png = _text(data["image/png"]).replace("\n", "")
        base64.b64decode(png, validate=True)  # a damaged figure fails the build instead of showing a blank
        return f'<p><img alt="figure" src="data:image/png;base64,{png}"></p>\n'
    if "text/html" in data:
        # pandas tables: drop their class so the theme styles them like every other table on the site
        table = _text(data["text/html"]).replace(' class="dataframe"', "")
        return f'<div class="nb-output">\n{table.strip()}\n</div>\n'
    if "text/plain" in data:
        return _fence(_text(data["text/plain"]))
    return ""


def notebook_markdown(path: Path) -> str:
    """A stored (executed) notebook as a markdown page: prose as written, code in fences, outputs below."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    note = (f"*This page shows the notebook [`examples/{path.name}`]({path.name}) with its stored outputs; "
            "download it to run it yourself.*\n")
    blocks = []
    for cell in nb.get("cells", []):
        source = _text(cell.get("source", ""))
        if cell.get("cell_type") == "markdown":
            # GitHub renders $...$ as maths, so the notebooks escape dollar signs; this site does not.
            blocks.append(source.replace("\\$", "$") + "\n")
            if note:  # after the introduction
                blocks.append(note)
                note = ""
        elif cell.get("cell_type") == "code" and source.strip():
            blocks.append(_fence(source, "python"))
            blocks.extend(_output(out) for out in cell.get("outputs", []))
    return "\n".join(block for block in blocks if block)


# ------------------------------------------------------------------------------------------------ hooks
def on_files(files: Files, config) -> Files:
    for path in sorted(EXAMPLES.glob("*.ipynb")):
        files.append(File.generated(config, f"examples/{path.stem}.md", content=notebook_markdown(path)))
        files.append(File.generated(config, f"examples/{path.name}", abs_src_path=str(path)))
    quickstart = EXAMPLES / "quickstart.py"
    if quickstart.exists():
        files.append(File.generated(config, "examples/quickstart.py", abs_src_path=str(quickstart)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri == "benchmarks.md":
        markdown = markdown.replace(MARKER, benchmark_results())
    if page.file.src_uri == "examples.md":
        # On GitHub these links open the notebooks themselves; here, their rendered pages.
        markdown = re.sub(r"\]\(\.\./examples/([^)/]+)\.ipynb\)", r"](examples/\1.md)", markdown)
        markdown = markdown.replace("](../examples/", "](examples/")
    return markdown
