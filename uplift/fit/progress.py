"""The progress protocol of a fit: cross-fitting and evaluation report each finished model group to it."""

from __future__ import annotations

from typing import Protocol


class ProgressHook(Protocol):
    def start(self, total: int, description: str) -> None: ...
    def advance(self, description: str) -> None: ...


class NoProgress:
    """A progress hook that shows nothing (the default outside the CLI)."""

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, description: str) -> None:
        pass
