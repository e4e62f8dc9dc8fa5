"""The package's layout holds: data flows one way through the layers, with no import cycles, no private names
imported across modules, and imports inside functions only for optional heavy dependencies.

The layers (docs/architecture.md), lowest first; a module may import its own layer's and lower layers' modules.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "uplift"

LAYERS = [
    ("foundations", {"uplift.errors", "uplift._stats", "uplift._display", "uplift._files", "uplift._versions",
                     "uplift._numba"}),
    ("data", {"uplift.data", "uplift.datasets"}),
    ("features", {"uplift.features"}),
    ("design", {"uplift.design"}),
    ("fit", {"uplift.fit"}),
    ("evaluate", {"uplift.evaluate"}),
    ("effects", {"uplift.effects"}),
    ("targeting", {"uplift.targeting"}),
    ("services", {"uplift.pipeline", "uplift.persist", "uplift.scoring", "uplift.spark", "uplift.serving",
                  "uplift.mlflow"}),
    ("viz", {"uplift.viz"}),
    ("study", {"uplift.study"}),
    ("cli", {"uplift.cli"}),
]
#: Third-party packages that may be imported inside a function: optional, or slow to import and needed by few
#: code paths (the CLI and ``import uplift`` must not pay for them: scipy, scikit-learn, LightGBM and matplotlib
#: together are ~1.5 s of every command's start-up; tests/cli/test_startup.py holds them out of ``import uplift.cli``).
LAZY_ALLOWED = {"pyspark", "dowhy", "shap", "mlflow", "numba", "econml", "causalml", "networkx", "statsmodels",
                "threadpoolctl", "IPython", "fastapi", "uvicorn", "prometheus_client", "orjson", "duckdb",
                "scipy", "sklearn", "lightgbm", "matplotlib", "PIL"}


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _layer(module: str) -> int | None:
    for i, (_, members) in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return i
    return None


def _imports(module: str, path: Path):
    """(imported module, imported names, line, inside a function) for every import of ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    in_function = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [a.name for a in node.names]
            # `from uplift.x import y` may import the module uplift.x.y; it runs the package face uplift.x too
            targets = [f"{base}.{n}" if f"{base}.{n}" in MODULES else base for n in names]
            for target, name in zip(targets, names, strict=True):
                yield target, name, node.lineno, id(node) in in_function
            if base in MODULES and base != "uplift" and any(t != base for t in targets):
                yield base, None, node.lineno, id(node) in in_function
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None, node.lineno, id(node) in in_function


def _own(target: str) -> str | None:
    """The package module an import refers to (the longest known prefix), or None for third-party ones."""
    while target:
        if target in MODULES:
            return target
        target = target.rpartition(".")[0]
    return None


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, path in MODULES.items():
        for target, _, _, _ in _imports(m, path):
            own = _own(target)
            if own and own != m and own != "uplift":
                edges[m].add(own)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    missing = sorted(m for m in MODULES if m != "uplift" and _layer(m) is None)
    assert not missing, f"modules without a layer in tests/test_architecture.py LAYERS: {missing}"


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = []
    for m, targets in _graph().items():
        if m == "uplift":
            continue  # the package's face re-exports from every layer
        for t in targets:
            if _layer(t) > _layer(m):
                upward.append(f"{m} ({LAYERS[_layer(m)][0]}) imports {t} ({LAYERS[_layer(t)][0]})")
    assert not upward, "\n".join(sorted(upward))


def test_nothing_imports_the_package_face():
    offenders = [f"{m}:{line}" for m, path in MODULES.items() if m != "uplift"
                 for target, name, line, _ in _imports(m, path) if target == "uplift" and name != "__version__"]
    assert not offenders, offenders


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def test_no_private_name_is_imported_across_modules():
    private = []
    for m, path in MODULES.items():
        where = f"{path.relative_to(PACKAGE.parent)}"
        for target, name, line, _ in _imports(m, path):
            own = _own(target)
            if own is None or own == m:
                continue
            if target not in MODULES and name and name.startswith("_") and not name.startswith("__"):
                private.append(f"{where}:{line} imports {target}.{name}")
            leaf = own.rpartition(".")[2]
            # A private module (datasets/_simulate.py) is its package's own business: only its package may import
            # it. The package-wide private helpers (uplift._stats, _display, _files, _versions) are for everyone.
            if leaf.startswith("_") and not leaf.startswith("__") and own.count(".") > 1 \
                    and own.rpartition(".")[0] != _package_of(m):
                private.append(f"{where}:{line} imports private module {own}")
    assert not private, "\n".join(private)


def test_imports_inside_functions_are_only_optional_heavy_dependencies():
    lazy = []
    for m, path in MODULES.items():
        for target, _, line, inside in _imports(m, path):
            if inside and target.split(".")[0] not in LAZY_ALLOWED:
                lazy.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target} inside a function")
    assert not lazy, "\n".join(lazy)


@pytest.mark.parametrize("source, expected", [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_cycle_finder_finds_cycles(source, expected):
    assert _cycles(source) == expected
