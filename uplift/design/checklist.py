"""The design checks a study runs on its data, collected into one :class:`DesignReport`.

Before fitting: the sample-ratio test and covariate balance (SMD, and whether the features predict the arm —
if they do, a study declared ``auto`` is analysed as observational), and features that are the outcome in
disguise. After the propensity is cross-fitted (observational designs): overlap, leakage (a feature that gives
the treatment away) and balance after weighting. A hard failure raises :class:`~uplift.errors.DesignCheckError`
naming the flag that overrides it; everything else becomes a check result and a note in words.

The checks compute on propensities; they never fit them. The balance check's propensity is a function handed
to the review (the fit layer's :func:`uplift.fit.nuisance.cross_fit_propensity`), and the observational checks
take the study's own cross-fitted propensities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import uplift.design.checks as checks
from uplift.data.campaign import CampaignData
from uplift.errors import DesignCheckError

#: Design checks on features (balance AUC and SMD, leakage) use at most this many rows (a random sample). At
#: 250,000 rows the balance AUC's 95% interval is about +-0.003 wide, far inside its 0.55 threshold, and the
#: check's cross-fitted propensity costs a quarter of what it did on 1M rows (24 s of a 1M-row study before).
CHECK_ROWS = 250_000
#: The outcome-proxy check uses at most this many rows.
PROXY_ROWS = 200_000
#: Folds of the balance check's cross-fitted propensity.
BALANCE_FOLDS = 3

#: ``propensity(features, t, n_folds, seed)``: out-of-fold P(t = 1 | x) of every row of ``features`` (a table of
#: the sampled rows), with 0/1 arm indicator ``t`` and ``n_folds`` folds seeded by ``seed``.
Propensity = Callable[[pd.DataFrame, np.ndarray, int, int], np.ndarray]


def sample_rows(rows: np.ndarray, max_rows: int, random_state: int) -> np.ndarray:
    """``rows``, or a sorted random sample of ``max_rows`` of them when there are more.

    Examples
    --------
    >>> sample_rows(np.arange(10), 4, 0).tolist()
    [2, 4, 5, 7]
    """
    if len(rows) <= max_rows:
        return rows
    return np.sort(np.random.default_rng(random_state).choice(rows, max_rows, replace=False))


def frame_rows(frame: pd.DataFrame, rows: np.ndarray, columns) -> pd.DataFrame:
    """The ``columns`` of ``rows`` of ``frame`` (no copy of the other rows)."""
    if len(rows) == len(frame):
        return frame[list(columns)]
    return frame.iloc[rows][list(columns)].reset_index(drop=True)


@dataclass
class DesignReport(Mapping):
    """The results of a study's design checks, by name: ``srm``, ``balance_auc``, ``balance``,
    ``outcome_proxies`` and, for observational designs, ``overlap``, ``leakage``, ``balance_weighted``.

    It reads as a mapping (``report["srm"]["passed"]``); tables are DataFrames when fitted and lists of records
    when loaded from a model directory.
    """

    checks: dict = field(default_factory=dict)

    def __getitem__(self, key: str):
        return self.checks[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)


class DesignReview:
    """Runs the design checks of one study on its data, in the order the fit needs them.

    Parameters
    ----------
    data : CampaignData
        The validated study data. A randomised study whose arms turn out predictable from the features is
        switched to ``observational`` (``data.design``).
    declared : str
        The design the analyst declared (``rct``, ``observational`` or ``auto``).
    pre_treatment : list of str
        Features declared as measured before the campaign: never flagged as leakage or outcome proxies.
    random_state : int
        Seed of the samples and folds the checks use.
    propensity : callable
        ``propensity(features, t, n_folds, seed)`` → out-of-fold P(treated) of each row (see :data:`Propensity`);
        the balance check's AUC is computed on it. The study passes
        :func:`uplift.fit.nuisance.cross_fit_propensity`.

    Examples
    --------
    >>> from uplift import campaign_data, simulate_campaign
    >>> from uplift.fit.nuisance import cross_fit_propensity
    >>> df = simulate_campaign(2000, seed=0)
    >>> d = campaign_data(df, "treatment", "conversion", id="customer_id", design="rct",
    ...                   exclude=["revenue", "true_uplift", "true_revenue_uplift", "propensity"])
    >>> review = DesignReview(d, declared="rct", pre_treatment=[], random_state=0,
    ...                       propensity=cross_fit_propensity)
    >>> review.randomisation(None, allow_srm=False)
    >>> check = review.report["balance_auc"][d.arms[1]]
    >>> check["passed"], check["rows_checked"]
    (True, 2000)
    """

    def __init__(self, data: CampaignData, *, declared: str, pre_treatment: list[str], random_state: int,
                 propensity: Propensity) -> None:
        self.data = data
        self.declared = declared
        self.pre_treatment = set(pre_treatment or [])
        self.random_state = random_state
        self.propensity = propensity
        self.report = DesignReport()
        self.notes: list[str] = []

    def randomisation(self, expected_split, allow_srm: bool) -> None:
        """Sample-ratio and balance checks for randomised (or ``auto``) designs; may switch to observational.

        ``expected_split``: the declared split (``{arm: share}`` or ``"ARM=SHARE"`` strings; shares or counts),
        or None (see :func:`uplift.design.checks.sample_ratio_check`: an unequal split is then reported, not
        refused).
        """
        data, arms, declared = self.data, self.data.arms, self.declared
        if declared == "observational" or data.propensity is not None and declared == "auto" \
                and data.design == "observational":
            return
        if expected_split is None and data.propensity is not None and len(arms) == 2:
            # A constant declared propensity is the design's split (e.g. 85% treated): check against it.
            share = float(np.mean(data.propensity, dtype=np.float64))
            expected_split = {arms[0]: 1.0 - share, arms[1]: share}
        srm = checks.sample_ratio_check(data.treatment, arms, expected_split)
        self.report.checks["srm"] = srm
        if srm["passed"] is False:
            if not allow_srm:
                fix = ("fix the assignment/logging" if srm["vanished"] else
                       "fix the assignment/logging, declare the real split")
                raise DesignCheckError(
                    f"{srm['message']}; {fix} (expected_split={{arm: share}}), or pass allow_srm=True",
                    cli=f"{srm['message']}; {fix} (--expected-split ARM=SHARE, once per arm), or pass "
                        "--allow-srm")
            # One place says it: the check's own row, marked as overridden.
            srm["message"] += " (ignored on request)"
        balance, tables = {}, []
        for a in range(1, len(arms)):
            pair = sample_rows(np.flatnonzero((data.treatment == 0) | (data.treatment == a)), CHECK_ROWS,
                               self.random_state)
            frame = frame_rows(data.frame, pair, data.schema.names)
            t = (data.treatment[pair] == a).astype(int)
            check = checks.balance_auc(t, self.propensity(frame, t, BALANCE_FOLDS, self.random_state))
            check["rows_checked"] = len(pair)
            balance[arms[a]] = check
            tables.append(checks.balance_table(frame, t).assign(arm=arms[a]))
            if not check["passed"] and data.design == "rct":
                self.notes.append(
                    f"WARNING: treatment {arms[a]!r} is predictable from the features (cross-fitted AUC "
                    f"{check['auc']:.3f} [{check['lower']:.3f}, {check['upper']:.3f}]); the study is analysed as "
                    "observational (adjusted for the features)")
                data.design = "observational"
        self.report.checks["balance_auc"] = balance
        if data.n > CHECK_ROWS:
            self.notes.append(f"balance checks (AUC, SMD) use a random sample of {CHECK_ROWS:,} of the {data.n:,} "
                              "rows per comparison; their intervals are those of the sample")
        self.report.checks["balance"] = pd.concat(tables, ignore_index=True)
        if declared == "auto" and data.design == "rct":
            self.notes.append("design 'auto' chose rct: treatment is not predictable from the features")

    def outcome_proxies(self, allow_leakage: bool) -> None:
        """Refuse features that are the outcome in disguise (e.g. revenue left in as a feature of conversion)."""
        data = self.data
        rows = sample_rows(np.arange(data.n), PROXY_ROWS, self.random_state)
        frame = frame_rows(data.frame, rows, data.schema.names)
        found = []
        for name, y in data.outcomes.items():
            hits = checks.outcome_proxy_check(frame, y[rows], random_state=self.random_state)
            found += [(name, r) for r in hits.itertuples() if r.feature not in self.pre_treatment]
        self.report.checks["outcome_proxies"] = pd.DataFrame(
            [{"outcome": o, "feature": r.feature, "statistic": r.statistic} for o, r in found],
            columns=["outcome", "feature", "statistic"])
        if found:
            outcome, r = found[0]
            msg = f"feature {r.feature!r} looks like the outcome {outcome!r} itself: {r.message}"
            if not allow_leakage:
                raise DesignCheckError(f"{msg} (exclude=[...], outcome=[...], or pass allow_leakage=True)",
                                       cli=f"{msg} (--exclude {r.feature}, --outcome {r.feature}, or pass "
                                           "--allow-leakage)")
            self.notes.append(f"outcome proxy ignored on request: {msg}")

    def observational(self, e: np.ndarray, allow_leakage: bool) -> None:
        """Overlap, leakage and weighted balance on the cross-fitted propensities ``e`` (n, n_arms) of an
        observational study (column ``a``: P(arm a | x, arm a or control))."""
        data, arms = self.data, self.data.arms
        overlap, leaks, weighted = {}, [], []
        for a in range(1, len(arms)):
            pair = np.flatnonzero((data.treatment == 0) | (data.treatment == a))
            t = (data.treatment[pair] == a).astype(int)
            ea = e[pair, a].astype(np.float64)
            overlap[arms[a]] = checks.overlap_summary(ea, t)
            # Leakage and weighted balance look at features: a random sample of CHECK_ROWS rows is plenty.
            sample = sample_rows(np.arange(len(pair)), CHECK_ROWS, self.random_state)
            frame = frame_rows(data.frame, pair[sample], data.schema.names)
            t, ea = t[sample], ea[sample]
            leaks.append(checks.leakage_check(frame, t, ea).assign(arm=arms[a]))
            weighted.append(checks.balance_table(frame, t, weights=checks.ipw_weights(ea, t)).assign(arm=arms[a]))
            if not overlap[arms[a]].get("passed", True):
                self.notes.append(f"WARNING: arm {arms[a]!r}: {overlap[arms[a]].get('message', '')}")
        leak = pd.concat(leaks, ignore_index=True)
        declared = self.pre_treatment
        if declared and len(leak):
            cleared = sorted(declared & set(leak["feature"].astype(str)))
            if cleared:
                self.notes.append("leakage check: " + ", ".join(cleared) + " declared pre-treatment, so not "
                                  "flagged (imbalance after weighting may still mean unmodelled confounding)")
            leak = leak[~leak["feature"].astype(str).isin(declared)].reset_index(drop=True)
        self.report.checks.update(overlap=overlap, leakage=leak,
                                  balance_weighted=pd.concat(weighted, ignore_index=True))
        hard = leak[leak["reason"] == "single_feature_auc"] if len(leak) else leak
        if len(hard):
            name = hard.iloc[0]["feature"]
            msg = (f"feature {name!r} almost perfectly predicts treatment (likely recorded after treatment)")
            if not allow_leakage:
                raise DesignCheckError(
                    f"{msg}; exclude it (exclude=[...]), declare it pre_treatment=[...], or pass allow_leakage=True",
                    cli=f"{msg}; exclude it (--exclude {name}), declare it --pre-treatment {name}, or pass "
                        "--allow-leakage")
            self.notes.append(f"leakage ignored on request: {msg}")
        elif len(leak):
            self.notes.append("WARNING: features still imbalanced after propensity weighting (post-treatment "
                              "variables, or confounding the propensity model did not capture; declare the ones "
                              "measured before the campaign as pre-treatment: pre_treatment=[...], CLI "
                              "--pre-treatment): "
                              + ", ".join(sorted(set(leak["feature"].astype(str)))))
