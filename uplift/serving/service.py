"""The scoring service without HTTP: one verified model, loaded once, answering uplift and coupon decisions.

:class:`ModelService` is what the FastAPI app (:mod:`uplift.serving.app`) and the MLflow model
(:mod:`uplift.mlflow`) both wrap. It calls the functions ``uplift predict`` and ``uplift target`` call —
:meth:`FitResult.predict_uplift <uplift.fit.result.FitResult.predict_uplift>` for the uplift,
:func:`~uplift.targeting.economics.costs_and_value` and :func:`~uplift.targeting.allocation.allocate` for the
decision — so a customer gets the same uplift and the same coupon from the service as from the command line.

The decision is the budget-free rule of ``uplift target`` (a budget is a property of a whole list, not of one
customer): every customer whose best coupon has positive expected profit (and ROI at least ``min_roi``) gets
that coupon. The optional holdout and exploration are drawn from a hash of the customer id and a seed, so the
same customer always gets the same draw, whichever request or worker process answers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.errors import UpliftInputError
from uplift.fit.distill import FAST
from uplift.fit.result import FitResult
from uplift.persist import load_result
from uplift.persist import model_digest as model_digest  # re-exported: the one digest (docs/security.md)
from uplift.serving.requests import Customers, DecisionOptions, RequestError
from uplift.targeting.allocation import allocate
from uplift.targeting.economics import costs_and_value
from uplift.targeting.lists import uplift_columns


def unit_draws(ids: list, seed: int) -> np.ndarray:
    """One uniform draw in [0, 1) per customer id, the same for the same id and seed in every process.

    The id is hashed as text (``7`` and ``"7"`` draw alike) with SipHash keyed by the seed.

    Examples
    --------
    >>> a = unit_draws([7, "x", 9], seed=1)
    >>> bool((a == unit_draws(["7", "x", 9], seed=1)).all()), bool((a != unit_draws([7, "x", 9], seed=2)).all())
    (True, True)
    """
    keys = np.array([str(i) for i in ids], dtype=object)
    hashed = pd.util.hash_array(keys, hash_key=f"{seed:016d}", categorize=False)
    return (hashed >> np.uint64(11)).astype(np.float64) / float(2**53)


def as_records(columns: dict[str, list]) -> list[dict]:
    """Columns of equal length as one dict per row.

    Examples
    --------
    >>> as_records({"id": [1, 2], "arm": ["a", None]})
    [{'id': 1, 'arm': 'a'}, {'id': 2, 'arm': None}]
    """
    keys = list(columns)
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns.values(), strict=True)]


#: The decision groups, indexed by 0: not targeted, 1: targeted (holdout and explore are set by name).
_GROUPS = np.array(["not_targeted", "targeted"], dtype=object)


@dataclass
class Scores:
    """Uplift of a batch of customers, per treated arm: ``uplift`` (n, A) and, when the learner has per-customer
    intervals, ``lower`` and ``upper``; for an observational study, ``propensity`` (n, A) and ``overlap`` (n,):
    whether the customer lies inside the study's overlap (:meth:`FitResult.overlap
    <uplift.fit.result.FitResult.overlap>`; outside it, the uplift is an extrapolation)."""

    uplift: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    propensity: np.ndarray | None = None
    overlap: np.ndarray | None = None

    @classmethod
    def concat(cls, parts: list[Scores]) -> Scores:
        """The scores of several batches of customers as one, in order."""
        def joined(name: str) -> np.ndarray | None:
            arrays = [getattr(p, name) for p in parts]
            return None if arrays[0] is None else np.concatenate(arrays)

        return cls(*(joined(name) for name in ("uplift", "lower", "upper", "propensity", "overlap")))

    def rows(self, start: int, stop: int) -> Scores:
        """The scores of customers ``start`` to ``stop`` (a view, no copy)."""
        cut = slice(start, stop)
        return Scores(*(None if a is None else a[cut] for a in (self.uplift, self.lower, self.upper,
                                                                 self.propensity, self.overlap)))


class ModelService:
    """One saved study, verified and loaded once, that scores customers and decides their coupons.

    Parameters
    ----------
    model_dir : str or path
        Model directory written by ``uplift fit`` (every file is verified against its sha256 on load).
    learner : str, optional
        ``"fast"`` for the distilled scorer, or a fitted learner's name. Default: the fast scorer when the study
        has one, else the chosen model.
    expect_digest : str, optional
        Refuse to load unless the directory's digest (:func:`uplift.persist.model_digest`) equals this.
    trust, require_signature : bool, default False
        As :func:`uplift.persist.load_result`: allow pickled models (forests); refuse an unsigned model.
    cost, value : optional
        Default economics of ``decide`` (per request values override them), as ``uplift target --cost/--value``.
    skip_extrapolated : bool, default False
        Default of ``decide``'s ``skip_extrapolated`` (a request's own ``true``/``false`` overrides it): no coupon
        by the rule for a customer outside an observational study's overlap (``uplift target
        --skip-extrapolated``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from uplift import Study, simulate_campaign
    >>> df = simulate_campaign(2000, seed=4)
    >>> truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> _ = Study(df, "treatment", "conversion", id="customer_id", exclude=truth + ["revenue"]).fit(
    ...     learners=["t"], n_folds=2, n_boot=10).save(d)
    >>> service = ModelService(d)
    >>> service.learner, service.scores(df.head(3)).uplift.shape
    ('fast', (3, 1))
    >>> ModelService(d, expect_digest="0" * 64)
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: model ... has digest ..., not the expected 0000000000000000...; ... refusing ...
    """

    def __init__(self, model_dir: str | Path, *, learner: str | None = None, expect_digest: str | None = None,
                 cost: float | dict | list | None = None, value: float | None = None, trust: bool = False,
                 require_signature: bool = False, skip_extrapolated: bool = False) -> None:
        self.model_dir = Path(model_dir)
        # Every file verified against the manifest; the digest is that of the manifest bytes actually read.
        self.result: FitResult = load_result(self.model_dir, trust=trust, expect_digest=expect_digest,
                                             require_signature=require_signature)
        self.digest = self.result.manifest["digest"]
        if learner is None:
            learner = FAST if self.result.scorer is not None else self.result.best_learner
        if learner == FAST and self.result.scorer is None:
            raise UpliftInputError("this model has no fast scorer; serve the full model (no --learner fast)")
        if learner != FAST and learner not in self.result.crossfit.uplift:
            raise UpliftInputError(f"learner {learner!r} was not fitted; fitted: "
                                   f"{', '.join(self.result.crossfit.uplift)} (or fast)")
        self.learner = learner
        self.default_cost, self.default_value = None, value
        self.default_skip_extrapolated = bool(skip_extrapolated)
        if cost is not None:  # a bad default fails at start-up, not per request
            costs, _ = costs_and_value(self.result, cost, value)
            self.default_cost = dict(zip(self.result.treated_arms, costs.tolist(), strict=True))
        self.columns = uplift_columns(self.result)

    # ------------------------------------------------------------------ facts
    @property
    def scorer_name(self) -> str:
        """Which model answers, in words: the fast scorer (distilled from the chosen learner) or a learner."""
        if self.learner == FAST:
            return f"fast scorer distilled from {self.result.best_learner}"
        return f"{self.learner} learner (fold models)"

    @property
    def arms(self) -> tuple[str, ...]:
        """The treated arms (coupons), in the order of the uplift columns."""
        return self.result.treated_arms

    def info(self) -> dict:
        """What ``GET /v1/model`` answers: digest, schema, arms, learner, when saved, training sizes."""
        r = self.result
        schema = r.schema
        saved = datetime.fromtimestamp(os.stat(self.model_dir / "manifest.json").st_mtime, UTC)
        return {
            "digest": self.digest, "model_dir": str(self.model_dir),
            "uplift_version": r.manifest.get("uplift_version"), "saved_at": saved.isoformat(timespec="seconds"),
            "schema": {"features": [{"name": n, "kind": "categorical" if n in schema.categories else "numeric",
                                     **({"levels": list(schema.categories[n])} if n in schema.categories else {})}
                                    for n in schema.names],
                       "id": r.id_column},
            "outcome": r.outcome, "outcome_kind": r.kind, "control": r.arms[0], "arms": list(self.arms),
            "chosen_learner": r.best_learner, "learner": self.learner, "scorer": self.scorer_name,
            "intervals": self.learner == "causal_forest",
            "fast_scorer_fidelity": r.fast_fidelity.to_dict(orient="records"),
            "training": {"n": r.training.n, "arm_counts": dict(r.training.arm_counts),
                         "data_sha256": r.training.data_sha256},
            "design": r.design, "fit_params": dict(r.fit_params),
            "default_cost": self.default_cost, "default_value": self.default_value,
            "default_skip_extrapolated": self.default_skip_extrapolated,
        }

    # ------------------------------------------------------------------ scoring
    def scores(self, customers: Customers | pd.DataFrame) -> Scores:
        """Uplift per arm (and overlap) of customers, from the calls ``uplift predict`` makes
        (:meth:`FitResult.predict_uplift <uplift.fit.result.FitResult.predict_uplift>` is the same encoding,
        :meth:`FitResult.score <uplift.fit.result.FitResult.score>` and :meth:`FitResult.overlap
        <uplift.fit.result.FitResult.overlap>` on a table).

        ``customers`` is a request's parsed :class:`~uplift.serving.requests.Customers` (encoded column by
        column, no DataFrame: most of a single customer's time went into building and encoding one) or a
        DataFrame (as ``uplift predict`` reads a file).
        """
        result = self.result
        schema = result.schema
        if isinstance(customers, pd.DataFrame):
            X = schema.encode(customers)
        elif schema.na_values:  # missing-value codes are masked on the table (FeatureSchema.prepare)
            X = schema.encode(customers.frame)
        else:
            X = schema.encode_columns(customers.columns, len(customers))
        up, lo, hi = result.score(X, learner=self.learner)
        overlap = result.overlap(X)
        return Scores(up, lo, hi, *(overlap or (None, None)))

    def uplift_table(self, ids: list | None, scores: Scores) -> dict[str, np.ndarray | list]:
        """The answer of ``POST /v1/uplift`` column by column: the columns of the ``uplift predict`` table
        (:meth:`FitResult.uplift_table <uplift.fit.result.FitResult.uplift_table>`, then ``propensity`` and
        ``overlap`` for an observational study), the id as ``id``."""
        result = self.result
        columns = result.uplift_table(scores.uplift, scores.lower, scores.upper)
        if scores.overlap is not None:
            columns.update(result.overlap_columns(scores.propensity, scores.overlap))
        # Numbers stay arrays (orjson writes contiguous numpy arrays directly); labels become lists.
        columns = {name: values.tolist() if values.dtype == object else np.ascontiguousarray(values)
                   for name, values in columns.items()}
        return {"id": ids, **columns} if ids is not None else columns

    def uplift_records(self, customers: Customers, scores: Scores) -> list[dict]:
        """One answer per customer of ``POST /v1/uplift``: uplift per arm (and interval), best arm, and for an
        observational study the propensity per arm and ``overlap``."""
        arms = self.arms

        def per_arm(values: np.ndarray) -> list[dict]:
            return [dict(zip(arms, row, strict=True)) for row in values.tolist()]

        columns = {"uplift": per_arm(scores.uplift)}
        if scores.lower is not None:
            columns["uplift_lower"] = per_arm(scores.lower)
            columns["uplift_upper"] = per_arm(scores.upper)
        columns["best_arm"] = np.asarray(arms, dtype=object)[scores.uplift.argmax(axis=1)].tolist()
        if scores.overlap is not None:
            columns["propensity"] = per_arm(scores.propensity)
            columns["overlap"] = scores.overlap.tolist()
        if customers.ids is not None:
            columns = {"id": customers.ids, **columns}
        return as_records(columns)

    # ------------------------------------------------------------------ decisions
    def economics(self, options: DecisionOptions) -> tuple[np.ndarray, float]:
        """Cost per coupon and value per unit of outcome of a request (its own, else the service defaults)."""
        cost = options.cost if options.cost is not None else self.default_cost
        if cost is None:
            raise RequestError("cost: give the cost per coupon (a number or {arm: cost}); this service has no "
                               "default (uplift serve --cost)")
        value = options.value if options.value is not None else self.default_value
        try:
            return costs_and_value(self.result, cost, value)
        except RequestError:
            raise
        except UpliftInputError as exc:
            field = "value" if "value" in str(exc) and "cost" not in str(exc) else "cost"
            raise RequestError(f"{field}: {exc}") from None

    def decide(self, ids: list | None, scores: Scores, options: DecisionOptions) -> tuple[dict[str, list], dict]:
        """The coupon of each customer under ``uplift target``'s budget-free rule, with the holdout/exploration.

        ``ids`` are the customers' ids (needed for a holdout or exploration), ``scores`` their uplift. Returns
        the decisions column by column (``id``, ``arm`` (None: no coupon), ``group``, ``rule_arm``, expected
        incremental outcome and value, ``cost``, ``expected_profit``, and ``overlap`` for an observational
        study; :func:`as_records` makes one dict per customer of them) and the rule that was applied (costs per
        arm, value). With ``options.skip_extrapolated`` a customer outside the study's overlap gets no coupon by
        the rule, as with ``uplift target --skip-extrapolated`` (exploration may still show one, as there).
        """
        costs, value = self.economics(options)
        outside = None
        skip = self.default_skip_extrapolated if options.skip_extrapolated is None else options.skip_extrapolated
        if skip and scores.overlap is not None:
            outside = ~scores.overlap
        try:
            alloc = allocate(scores.uplift, costs, value, min_roi=options.min_roi, exclude=outside)
        except UpliftInputError as exc:
            raise RequestError(f"min_roi: {exc}" if "min_roi" in str(exc) else f"cost: {exc}") from None
        n = len(scores.uplift)
        rule_arm = alloc.arm
        shown = rule_arm.copy()
        group = _GROUPS[(rule_arm >= 0).astype(np.intp)]
        if options.holdout > 0:
            if ids is None:
                raise RequestError(f"holdout: the draw is seeded by the customer id; send "
                                   f"{self.result.id_column or 'an id'!r} with every customer")
            u = unit_draws(ids, options.seed)
            held = (rule_arm >= 0) & (u < options.holdout)
            explored = (rule_arm < 0) & (u < options.explore)
            shown[held] = -1
            group[held] = "holdout"
            best = scores.uplift.argmax(axis=1)
            shown[explored] = best[explored]
            group[explored] = "explore"
        rows = np.arange(n)
        a = np.where(shown >= 0, shown, 0)
        outcome = np.where(shown >= 0, scores.uplift[rows, a], 0.0)
        cost = np.where(shown >= 0, costs[a], 0.0)
        names = np.append(np.asarray(self.arms, dtype=object), None)  # index -1: no coupon
        columns = {"arm": names[shown].tolist(), "group": group.tolist(), "rule_arm": names[rule_arm].tolist(),
                   "expected_incremental_outcome": outcome.tolist(),
                   "expected_incremental_value": (outcome * value).tolist(), "cost": cost.tolist(),
                   "expected_profit": (outcome * value - cost).tolist()}
        if scores.overlap is not None:
            columns["overlap"] = scores.overlap.tolist()
        if ids is not None:
            columns = {"id": ids, **columns}
        rule = {"cost": dict(zip(self.arms, costs.tolist(), strict=True)), "value": value, "min_roi": options.min_roi,
                "holdout": options.holdout, "explore": options.explore, "seed": options.seed,
                "skip_extrapolated": skip,
                "rule": "every customer whose best coupon has positive expected profit gets it (uplift target "
                        "without a budget)"}
        return columns, rule
