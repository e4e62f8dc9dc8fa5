"""The documentation site builds cleanly and its CLI reference is the CLI's current help."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mkdocs_build_is_strict_clean(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    site = tmp_path / "site"
    for page in ("index.html", "cli/index.html", "api/index.html", "architecture/index.html",
                 "benchmarks/index.html", "examples/01_email_ab_test/index.html"):
        assert (site / page).is_file(), page
    # The layering diagram reaches the page as a mermaid block (superfences' custom fence), not as code.
    architecture = (site / "architecture" / "index.html").read_text(encoding="utf-8")
    assert '<pre class="mermaid"><code>flowchart' in architecture


def test_cli_reference_matches_the_cli_help():
    gen_cli = _load("gen_cli")
    assert gen_cli.CLI_MD.read_text(encoding="utf-8") == gen_cli.render(), (
        "docs/cli.md is out of date with `uplift --help`: run python docs/gen_cli.py")


def test_benchmarks_page_includes_every_results_file():
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    text = _load("hooks").benchmark_results()
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.md")):
        assert f"`benchmarks/results/{path.name}`" in text
        assert path.read_text(encoding="utf-8").strip().splitlines()[0] in text
