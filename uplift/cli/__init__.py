"""The ``uplift`` command line (typer): thin commands over the Python API, terminal rendering, the demo."""

from uplift.cli.commands import app, main

__all__ = ["app", "main"]
