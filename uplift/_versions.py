"""The package's own version (from its installed metadata: written once, in pyproject.toml) and the versions of
the packages a result depends on, recorded in every model directory and report footer."""

from __future__ import annotations

from importlib import metadata

#: Packages whose versions a saved model and a report record (what a rerun must match).
PACKAGES = ("uplift", "numpy", "pandas", "scipy", "scikit-learn", "lightgbm", "matplotlib", "shap", "econml",
            "causalml")

try:
    __version__ = metadata.version("uplift")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each package (``"not installed"`` where missing).

    Examples
    --------
    >>> package_versions(("numpy",))["numpy"].split(".")[0].isdigit()
    True
    """
    out = {}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
