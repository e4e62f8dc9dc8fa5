"""Compiling with numba: imported only when a compiled kernel is first needed, cached on disk where allowed."""

from __future__ import annotations

import os


def cacheable(module_file: str) -> bool:
    """Whether numba may cache compiled code beside ``module_file`` (not in a read-only install)."""
    here = os.path.dirname(module_file)
    cache = os.path.join(here, "__pycache__")
    return os.access(cache, os.W_OK) if os.path.isdir(cache) else os.access(here, os.W_OK)
