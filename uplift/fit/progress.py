"""The progress protocol of a fit, and the wall time of each of its phases.

Cross-fitting and evaluation report each finished model group to a :class:`ProgressHook` (the CLI's progress
bar). Independently of any display, every fit records how long each phase took in a :class:`PhaseTimes`
(read, validation, design checks, each nuisance model, each learner, ensemble, leaderboard, calibration, drift
profile, distillation, save): the study keeps it (``FitResult.timings``), saves it, and ``uplift fit`` prints it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
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


class PhaseTimes:
    """Wall seconds per named phase, in the order the phases first ran; a phase that runs again (one per fold,
    one per arm) adds to its total.

    Examples
    --------
    >>> times = PhaseTimes()
    >>> with times.phase("design checks"):
    ...     pass
    >>> times.add("learner x", 1.5)
    >>> times.add("learner x", 0.5)
    >>> list(times.seconds), times.seconds["learner x"]
    (['design checks', 'learner x'], 2.0)
    """

    def __init__(self, seconds: dict[str, float] | None = None) -> None:
        self.seconds: dict[str, float] = dict(seconds or {})

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to phase ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as (part of) phase ``name``; the time counts even if the block raises."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    @property
    def total(self) -> float:
        """Seconds of all recorded phases together."""
        return sum(self.seconds.values())


def time_call(times: PhaseTimes | None, name: str):
    """``times.phase(name)``, or a no-op context when no times are recorded."""
    return contextlib.nullcontext() if times is None else times.phase(name)


def phase_records(times: PhaseTimes | dict[str, float]) -> list[dict]:
    """The phases as records ``{"phase", "seconds", "share"}`` (share of the total), in the order they ran.

    Examples
    --------
    >>> phase_records({"read": 1.0, "learner x": 3.0})
    [{'phase': 'read', 'seconds': 1.0, 'share': 0.25}, {'phase': 'learner x', 'seconds': 3.0, 'share': 0.75}]
    """
    seconds = times.seconds if isinstance(times, PhaseTimes) else dict(times)
    total = sum(seconds.values()) or 1.0
    return [{"phase": name, "seconds": round(s, 3), "share": round(s / total, 4)} for name, s in seconds.items()]
