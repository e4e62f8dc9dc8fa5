"""Which part of the observational fit moved the 100k benchmark? ``benchmarks/at_scale.py`` with one part off.

``nopool``: the observational outcome models boosted from their own arm's mean instead of a pooled model of
both arms (``fit_nuisances(pooled_outcome=False)``); ``noweights``: the DR final stages, the stacked ensemble and
the DR-loss selection unweighted (``overlap_weights`` returns None). Everything else is the default study.
The part is switched off by replacing the function for this process only: a measurement, not an option.

Run::

    python benchmarks/at_scale_ablation.py nopool --compare benchmarks/results/at_scale_main.json

Results go to ``benchmarks/results/at_scale_abl_<part>.md`` and ``.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import uplift.fit.crossfit as crossfit  # noqa: E402
import uplift.fit.learners as learners  # noqa: E402
from benchmarks import at_scale  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    part, rest = argv[0], argv[1:]
    if part == "nopool":
        fit_nuisances = crossfit.fit_nuisances

        def unpooled(*args, **kwargs):
            return fit_nuisances(*args, **{**kwargs, "pooled_outcome": False})

        crossfit.fit_nuisances = unpooled
    elif part == "noweights":
        crossfit.overlap_weights = learners.overlap_weights = lambda e: None
    else:
        raise SystemExit(f"part must be nopool or noweights, got {part!r}")
    at_scale.main(["--designs", "observational", "--tag", f"abl_{part}", *rest])


if __name__ == "__main__":
    main()
