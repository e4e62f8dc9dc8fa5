"""The :class:`Study`: one campaign, from validated data to fitted, evaluated and saved uplift models.

It chains the modules in the one direction data flows: ``data`` → ``crossfit`` (nuisances and learners,
out of fold) → ``evaluate`` (leaderboard, selection, calibration) → ``effects`` (ATE/ATT) → prediction for
new customers, and ``save``/``load`` through :mod:`uplift.persist`. The CLI and the report call these same
methods.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from uplift.data.campaign import CampaignData, FeatureSchema, campaign_data
from uplift.effects.average import average_effects
from uplift.errors import UpliftInputError
from uplift.evaluate.selection import best_learner, calibration, leaderboard
from uplift.fit.crossfit import CrossFit, ProgressHook, _NoProgress, cross_fit, predict_uplift, release_free_memory
from uplift.fit.learners import DEFAULT_LEARNERS, REGISTRY
from uplift.fit.models import MAX_TRAIN_ROWS, ModelFactory

#: Design checks on features (balance AUC and SMD, leakage) use at most this many rows (a random sample).
CHECK_ROWS = 1_000_000
#: The drift profile (feature and predicted-uplift quantiles) is taken on at most this many rows.
PROFILE_ROWS = 200_000


def _sample_rows(rows: np.ndarray, max_rows: int, random_state: int) -> np.ndarray:
    """``rows``, or a sorted random sample of ``max_rows`` of them when there are more."""
    if len(rows) <= max_rows:
        return rows
    return np.sort(np.random.default_rng(random_state).choice(rows, max_rows, replace=False))


def _frame_rows(frame: pd.DataFrame, rows: np.ndarray, columns) -> pd.DataFrame:
    """The feature columns of ``rows`` of ``frame`` (no copy of the other rows)."""
    if len(rows) == len(frame):
        return frame[list(columns)]
    return frame.iloc[rows][list(columns)].reset_index(drop=True)


class Study:
    """An uplift study of one campaign.

    Parameters
    ----------
    data : DataFrame
        One row per customer.
    treatment, outcome, control, features, exclude, id, propensity, design
        Column roles; see :func:`uplift.data.campaign.campaign_data`. ``outcome`` may be a list: the first is modelled,
        all get average effects.
    min_rows_per_arm : int
        Fewest rows allowed in any arm.
    pre_treatment : list of str or True, optional
        Features known to be measured before the campaign (``True``: all of them). The observational leakage
        check does not flag them as possible post-treatment variables.

    Examples
    --------
    >>> from uplift import Study, simulate_campaign
    >>> df = simulate_campaign(4000, seed=3)
    >>> truth = [c for c in df if c.startswith("true_")] + ["propensity"]
    >>> study = Study(df, treatment="treatment", outcome="conversion", id="customer_id", exclude=truth)
    >>> study = study.fit(learners=["t", "dr"], n_folds=3, n_boot=50)
    >>> study.best_learner_ in {"t", "dr", "ensemble"}
    True
    >>> list(study.ate()["estimand"])
    ['ATE', 'ATT']
    """

    def __init__(self, data: pd.DataFrame, treatment: str, outcome: str | list[str], *, control: str | None = None,
                 features: list[str] | None = None, exclude: list[str] | None = None, id: str | None = None,  # noqa: A002
                 propensity: str | None = None, design: str = "auto", min_rows_per_arm: int = 30,
                 pre_treatment: list[str] | bool | None = None) -> None:
        self.data: CampaignData | None = campaign_data(
            data, treatment, outcome, control=control, features=features, exclude=exclude, id=id,
            propensity=propensity, design=design, min_rows_per_arm=min_rows_per_arm)
        self.schema: FeatureSchema = self.data.schema
        self.arms = self.data.arms
        self.roles = dict(self.data.roles)
        self.design = self.data.design
        self.notes = list(self.data.notes)
        if pre_treatment is True:
            pre = list(self.schema.names)
        else:
            pre = [pre_treatment] if isinstance(pre_treatment, str) else list(pre_treatment or [])
            unknown = [c for c in pre if c not in self.schema.names]
            if unknown:
                raise UpliftInputError(f"pre_treatment column {unknown[0]!r} is not a feature of this study; "
                                       f"features are: {', '.join(self.schema.names)}")
        self.roles["pre_treatment"] = pre

    # ------------------------------------------------------------------ fitting
    def fit(self, learners: list[str] | tuple[str, ...] = DEFAULT_LEARNERS, *, n_folds: int = 5,
            random_state: int = 0, select: str = "dr_loss", base_regressor: object | None = None,
            base_classifier: object | None = None, n_boot: int = 200, k: float = 0.3,
            expected_split: dict[str, float] | None = None, allow_srm: bool = False,
            allow_leakage: bool = False, max_train_rows: int | None = MAX_TRAIN_ROWS,
            progress: ProgressHook | None = None) -> Study:
        """Cross-fit every learner, evaluate out of fold, pick the best, and estimate average effects.

        Parameters
        ----------
        learners : list of str
            Registry names: ``"s"``, ``"t"``, ``"x"``, ``"r"``, ``"dr"``, ``"causal_forest"``, ``"uplift_forest"``.
            With two or more, a stacked ``"ensemble"`` of them is evaluated too.
        n_folds : int
            Cross-fitting folds.
        random_state : int
            Seed; the same seed and data give the same study.
        select : {"dr_loss", "qini"}
            Selection criterion (see :mod:`uplift.evaluate.selection`).
        base_regressor, base_classifier : sklearn estimators, optional
            Replace the default LightGBM base models.
        n_boot : int
            Bootstrap resamples for metric CIs.
        k : float
            Share targeted for uplift@k.
        expected_split : dict, optional
            Declared share of each arm in a randomised study, for the sample-ratio check. Default: the declared
            propensity when it is constant (e.g. 0.85 treated), else equal shares.
        allow_srm, allow_leakage : bool
            Continue although the sample-ratio check or the leakage check failed hard (not recommended).
        max_train_rows : int or None
            Cap on the rows any one base model trains on (default 4,000,000; None: no cap). Beyond it each model
            trains on its own random sample; every row still gets out-of-fold predictions and counts in the
            evaluation. It bounds the memory and time of very large studies (see docs/spark.md).
        progress : ProgressHook, optional
            Progress display (the CLI passes a rich progress bar).
        """
        data = self._training_data()
        learners = tuple(learners)
        if not learners:
            raise UpliftInputError("give at least one learner")
        unknown = [name for name in learners if name not in REGISTRY]
        if unknown:
            raise UpliftInputError(f"unknown learner {unknown[0]!r}; choose from {', '.join(REGISTRY)}")
        if select not in ("dr_loss", "qini"):
            raise UpliftInputError(f"select must be 'dr_loss' or 'qini', got {select!r}")
        self.diagnostics_ = {}
        progress = progress or _NoProgress()
        progress.start(1, "design checks (sample ratio, balance)")
        self._check_randomisation(expected_split, allow_srm, random_state)
        self._check_outcome_proxies(allow_leakage, random_state)
        progress.advance("design checks done")
        release_free_memory()
        if max_train_rows is not None and max_train_rows < 1000:
            raise UpliftInputError(f"max_train_rows must be at least 1000 (or None for no cap), got {max_train_rows}")
        factory = ModelFactory(base_regressor, base_classifier, data.schema.categorical_indices, random_state,
                               max_rows=max_train_rows)
        self.random_state = random_state
        self.crossfit_: CrossFit = cross_fit(data, learners=learners, n_folds=n_folds, random_state=random_state,
                                             factory=factory, progress=progress)
        release_free_memory()
        y = data.outcomes[self.crossfit_.outcome]
        if data.design == "observational":
            self._check_observational(allow_leakage)
        self.leaderboard_ = leaderboard(self.crossfit_, y, data.treatment, k=k, n_boot=n_boot,
                                        random_state=random_state, select=select, progress=progress)
        self.best_learner_ = best_learner(self.leaderboard_)
        progress.start(4, "average effects, calibration, drift profile, fast scorer")
        self.ate_ = self._average_effects(factory, n_folds, random_state)
        progress.advance("average effects")
        release_free_memory()
        self.calibration_ = calibration(self.crossfit_, y, data.treatment, self.best_learner_)
        release_free_memory()
        progress.advance("calibration")
        from uplift.design.drift import training_profile

        # The training distribution travels with the model so every scoring call can check for drift.
        # Reference for predicted-uplift drift: the fitted model's own predictions (not out-of-fold ones, whose
        # spread is larger), i.e. exactly what scoring new customers produces. Quantiles need no more than
        # PROFILE_ROWS customers (a random sample beyond that; the profile records how many).
        rows = _sample_rows(np.arange(data.n), PROFILE_ROWS, random_state)
        X_rows = data.X[rows]
        fitted_uplift, _, _ = predict_uplift(self.crossfit_, X_rows, self.best_learner_)
        self.profile_ = training_profile(_frame_rows(data.frame, rows, self.schema.names), self.schema,
                                         uplift=fitted_uplift)
        progress.advance("drift profile")
        from uplift.fit.distill import DistilledScorer

        # The fast scorer learns the same predictions on the same sampled customers (no extra teacher cost).
        self.scorer_ = DistilledScorer(categorical=data.schema.categorical_indices,
                                       random_state=random_state).fit(X_rows, fitted_uplift)
        release_free_memory()
        progress.advance("fast scorer (distilled)")
        self.fit_params_ = {"learners": list(learners), "n_folds": n_folds, "random_state": random_state,
                            "select": select, "n_boot": n_boot, "k": k, "max_train_rows": max_train_rows}
        return self

    def _check_randomisation(self, expected_split: dict | None, allow_srm: bool, random_state: int) -> None:
        """Sample-ratio and balance checks for randomised (or ``auto``) designs; may switch to observational."""
        from uplift.design import checks as diagnostics
        from uplift.errors import DesignCheckError

        data = self.data
        declared = self.roles.get("design_declared")
        if declared == "observational" or data.propensity is not None and declared == "auto" \
                and data.design == "observational":
            return
        counts = data.arm_counts()
        if expected_split is None and data.propensity is not None and len(self.arms) == 2:
            # A constant declared propensity is the design's split (e.g. 85% treated): check against it.
            share = float(np.mean(data.propensity, dtype=np.float64))
            expected_split = {self.arms[0]: 1.0 - share, self.arms[1]: share}
        shares = None if expected_split is None else [expected_split.get(a, 0.0) for a in counts]
        srm = diagnostics.srm_test(counts, shares)
        self.diagnostics_["srm"] = srm
        if not srm["passed"]:
            if not allow_srm:
                raise DesignCheckError(f"sample-ratio mismatch: {srm['message']}; fix the assignment/logging, "
                                       "declare the real split (expected_split=...), or pass allow_srm=True "
                                       "(CLI: --allow-srm)")
            self.notes.append(f"sample-ratio mismatch ignored on request: {srm['message']}")
        balance, tables = {}, []
        for a in range(1, len(self.arms)):
            pair = _sample_rows(np.flatnonzero((data.treatment == 0) | (data.treatment == a)), CHECK_ROWS,
                                random_state)
            frame = _frame_rows(data.frame, pair, self.schema.names)
            t = (data.treatment[pair] == a).astype(int)
            check = diagnostics.balance_auc(frame, t, n_folds=3, random_state=random_state)
            check["rows_checked"] = len(pair)
            balance[self.arms[a]] = check
            tables.append(diagnostics.balance_table(frame, t).assign(arm=self.arms[a]))
            if not check["passed"] and data.design == "rct":
                self.notes.append(
                    f"WARNING: treatment {self.arms[a]!r} is predictable from the features (cross-fitted AUC "
                    f"{check['auc']:.3f} [{check['lower']:.3f}, {check['upper']:.3f}]); the study is analysed as "
                    "observational (adjusted for the features)")
                data.design = self.design = "observational"
        self.diagnostics_["balance_auc"] = balance
        if data.n > CHECK_ROWS:
            self.notes.append(f"balance checks (AUC, SMD) use a random sample of {CHECK_ROWS:,} of the {data.n:,} "
                              "rows per comparison; their intervals are those of the sample")
        self.diagnostics_["balance"] = pd.concat(tables, ignore_index=True)
        if declared == "auto" and data.design == "rct":
            self.notes.append("design 'auto' chose rct: treatment is not predictable from the features")

    def _check_outcome_proxies(self, allow_leakage: bool, random_state: int) -> None:
        """Refuse features that are the outcome in disguise (e.g. revenue left in as a feature of conversion)."""
        from uplift.design import checks as diagnostics
        from uplift.errors import DesignCheckError

        data = self.data
        rows = _sample_rows(np.arange(data.n), 200_000, random_state)
        frame = _frame_rows(data.frame, rows, self.schema.names)
        declared = set(self.roles.get("pre_treatment") or [])
        found = []
        for name, y in data.outcomes.items():
            hits = diagnostics.outcome_proxy_check(frame, y[rows], random_state=random_state)
            found += [(name, r) for r in hits.itertuples() if r.feature not in declared]
        self.diagnostics_["outcome_proxies"] = pd.DataFrame(
            [{"outcome": o, "feature": r.feature, "statistic": r.statistic} for o, r in found],
            columns=["outcome", "feature", "statistic"])
        if found:
            outcome, r = found[0]
            msg = (f"feature {r.feature!r} looks like the outcome {outcome!r} itself: {r.message} "
                   "(or pass allow_leakage=True, CLI: --allow-leakage)")
            if not allow_leakage:
                raise DesignCheckError(msg)
            self.notes.append(f"outcome proxy ignored on request: {msg}")

    def _check_observational(self, allow_leakage: bool) -> None:
        """Overlap and leakage checks on the cross-fitted propensities of an observational study."""
        from uplift.design import checks as diagnostics
        from uplift.errors import DesignCheckError

        data, cf = self.data, self.crossfit_
        overlap, leaks, weighted = {}, [], []
        for a in range(1, len(self.arms)):
            pair = np.flatnonzero(cf.in_arm(data.treatment, a))
            t = (data.treatment[pair] == a).astype(int)
            e = cf.e[pair, a].astype(np.float64)
            overlap[self.arms[a]] = diagnostics.overlap_summary(e, t)
            # Leakage and weighted balance look at features: a random sample of CHECK_ROWS rows is plenty.
            sample = _sample_rows(np.arange(len(pair)), CHECK_ROWS, self.random_state)
            frame = _frame_rows(data.frame, pair[sample], self.schema.names)
            t, e = t[sample], e[sample]
            leaks.append(diagnostics.leakage_check(frame, t, e).assign(arm=self.arms[a]))
            weighted.append(diagnostics.balance_table(frame, t, weights=diagnostics.ipw_weights(e, t))
                            .assign(arm=self.arms[a]))
            if not overlap[self.arms[a]].get("passed", True):
                self.notes.append(f"WARNING: arm {self.arms[a]!r}: {overlap[self.arms[a]].get('message', '')}")
        leak = pd.concat(leaks, ignore_index=True)
        declared = set(self.roles.get("pre_treatment") or [])
        if declared and len(leak):
            cleared = sorted(declared & set(leak["feature"].astype(str)))
            if cleared:
                self.notes.append("leakage check: " + ", ".join(cleared) + " declared pre-treatment, so not "
                                  "flagged (imbalance after weighting may still mean unmodelled confounding)")
            leak = leak[~leak["feature"].astype(str).isin(declared)].reset_index(drop=True)
        self.diagnostics_.update(overlap=overlap, leakage=leak, balance_weighted=pd.concat(weighted, ignore_index=True))
        hard = leak[leak["reason"] == "single_feature_auc"] if len(leak) else leak
        if len(hard):
            msg = (f"feature {hard.iloc[0]['feature']!r} almost perfectly predicts treatment (likely recorded after "
                   "treatment); exclude it (exclude=[...]), declare it pre_treatment=[...], or pass "
                   "allow_leakage=True (CLI: --allow-leakage)")
            if not allow_leakage:
                raise DesignCheckError(msg)
            self.notes.append(f"leakage ignored on request: {msg}")
        elif len(leak):
            self.notes.append("WARNING: features still imbalanced after propensity weighting (post-treatment "
                              "variables, or confounding the propensity model did not capture; declare the ones "
                              "measured before the campaign with pre_treatment=[...]): "
                              + ", ".join(sorted(set(leak["feature"].astype(str)))))

    def _average_effects(self, factory: ModelFactory, n_folds: int, random_state: int) -> pd.DataFrame:
        data = self.data
        tables = []
        for name in data.outcomes:
            mu = e = None
            if data.design == "observational":
                cf = self.crossfit_ if name == self.crossfit_.outcome else cross_fit(
                    data, outcome=name, learners=("t",), n_folds=n_folds, random_state=random_state, factory=factory)
                mu, e = cf.mu, cf.e
            tables.append(average_effects(data.outcomes[name], data.treatment, data.arms, outcome=name,
                                          kind=data.outcome_kinds[name], design=data.design, mu=mu, e=e))
        return pd.concat(tables, ignore_index=True)

    # ------------------------------------------------------------------ results
    @property
    def result(self):
        """The fitted result (:class:`~uplift.fit.result.FitResult`): everything the fit produced."""
        from uplift.data.fingerprint import data_hash
        from uplift.fit.result import FitResult, TrainingSummary

        self._fitted()
        if getattr(self, "_result", None) is None:
            if self.data is not None:
                d = self.data
                training = TrainingSummary(int(d.n), d.arm_counts(), dict(d.outcome_kinds),
                                           data_hash(d.X, d.treatment, d.outcomes[self.crossfit_.outcome]))
            else:
                tr = self.training_
                training = TrainingSummary(tr["n"], tr["arm_counts"], tr["outcome_kinds"],
                                           self.manifest_.get("training_data_sha256", ""))
            self._result = FitResult(
                schema=self.schema, roles=self.roles, arms=tuple(self.arms), design=self.design,
                notes=tuple(self.notes), crossfit=self.crossfit_, best_learner=self.best_learner_,
                leaderboard=self.leaderboard_, ate=self.ate_, calibration=self.calibration_,
                diagnostics=getattr(self, "diagnostics_", {}), profile=self.profile_, scorer=self.scorer_,
                fit_params=self.fit_params_, training=training, manifest=getattr(self, "manifest_", {}))
        return self._result

    def _fitted(self) -> None:
        if not hasattr(self, "crossfit_"):
            raise UpliftInputError("the study is not fitted yet: call .fit() first")

    def _training_data(self) -> CampaignData:
        if self.data is None:
            raise UpliftInputError("this study was loaded from disk without its training data; "
                                   "re-create it from the data to use this method")
        return self.data

    def leaderboard(self) -> pd.DataFrame:
        """Cross-fitted scores of every learner (see :func:`uplift.evaluate.selection.leaderboard`)."""
        self._fitted()
        return self.leaderboard_.copy()

    def ate(self) -> pd.DataFrame:
        """Average effects per arm and outcome with 95% CIs (absolute and relative)."""
        self._fitted()
        return self.ate_.copy()

    def calibration(self) -> pd.DataFrame:
        """Predicted vs observed uplift by decile of the chosen learner's out-of-fold prediction."""
        self._fitted()
        return self.calibration_.copy()

    def attach_data(self, data: pd.DataFrame) -> Study:
        """Re-attach the training data to a study loaded from disk (verified against the saved data hash).

        Segments and explanations need the training rows; a saved study keeps only their hash.
        """
        from uplift.data.fingerprint import data_hash

        roles = self.roles
        d = campaign_data(data, roles["treatment"], roles["outcomes"], control=roles["control"],
                          features=roles["features"], id=roles["id"], propensity=roles["propensity"],
                          design=self.design)
        expected = getattr(self, "manifest_", {}).get("training_data_sha256")
        got = data_hash(d.X, d.treatment, d.outcomes[self.crossfit_.outcome])
        if expected is not None and got != expected:
            raise UpliftInputError("this data is not the data the model was trained on (its hash differs from the "
                                   "saved training-data hash); pass the exact training file")
        d.design = self.design
        self.data = d
        return self

    def drift(self, data: pd.DataFrame, *, uplift: pd.DataFrame | np.ndarray | None = None, **kwargs) -> dict:
        """How far customers to score are from the training customers (PSI, unseen levels, missing shares,
        predicted-uplift shift); see :func:`uplift.design.drift.drift_from_profile` for thresholds."""
        from uplift.design.drift import drift_from_profile

        self._fitted()
        if uplift is None:
            uplift = self.predict_uplift(data)
        if isinstance(uplift, pd.DataFrame):
            cols = ["uplift"] if len(self.arms) == 2 else [f"uplift_{a}" for a in self.arms[1:]]
            uplift = uplift[cols].to_numpy()
        return drift_from_profile(self.profile_, data, self.schema, score_uplift=uplift, **kwargs)

    def diagnostics(self) -> dict:
        """Design checks run by :meth:`fit`: SRM, balance (AUC and SMD), overlap and leakage."""
        self._fitted()
        return dict(self.diagnostics_)

    def refute(self, *, arm: str | None = None, estimate_method: str = "aipw", max_rows: int = 20_000,
               refuters: tuple[str, ...] = ("placebo", "random_common_cause", "data_subset", "unobserved"),
               random_state: int = 0) -> pd.DataFrame:
        """DoWhy refutation of the average effect of ``arm`` (default: the first treated arm) vs control.

        Builds a back-door causal model with every feature as a confounder, estimates the effect and runs
        placebo-treatment, random-common-cause, data-subset and unobserved-confounder refuters (see
        :func:`uplift.design.refute.dowhy_refute`), on a random sample of at most ``max_rows`` rows.
        """
        from uplift.design.refute import dowhy_refute

        self._fitted()
        data = self._training_data()
        a = 1 if arm is None else self.arms.index(arm) if arm in self.arms[1:] else None
        if a is None:
            raise UpliftInputError(f"arm {arm!r} is not a treated arm; choose from {', '.join(self.arms[1:])}")
        rows = np.flatnonzero((data.treatment == 0) | (data.treatment == a))
        if len(rows) > max_rows:
            rows = np.sort(np.random.default_rng(random_state).choice(rows, max_rows, replace=False))
        X = data.X[rows]
        X = np.where(np.isnan(X), np.nanmedian(X, axis=0), X)
        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
        frame["treated"] = (data.treatment[rows] == a).astype(int)
        frame["outcome"] = data.outcomes[self.crossfit_.outcome][rows]
        table = dowhy_refute(frame, "treated", "outcome", [f"x{j}" for j in range(X.shape[1])],
                             estimate_method=estimate_method, refuters=refuters, random_state=random_state)
        table.attrs["features"] = dict(zip(frame.columns[:X.shape[1]], self.schema.names, strict=True))
        return table

    def e_values(self) -> pd.DataFrame:
        """E-value of every binary-outcome ATE (VanderWeele & Ding): how strong hidden confounding must be
        (risk-ratio scale, with both treatment and outcome) to explain the effect away."""
        from uplift.design.checks import e_value

        self._fitted()
        rows = []
        for r in self.ate_.query("estimand == 'ATE' and unit == 'pp' and control_mean > 0").itertuples():
            ev = e_value(r.estimate, r.lower, r.upper, baseline_risk=r.control_mean, kind="rd")
            rows.append({"arm": r.arm, "outcome": r.outcome, **ev})
        return pd.DataFrame(rows)

    def segments(self, by: list[str] | str, **kwargs) -> pd.DataFrame:
        """Uplift per segment with 95% AIPW CIs (see :func:`uplift.effects.segments.segment_uplift`)."""
        from uplift.effects.segments import segment_uplift

        self._fitted()
        self._training_data()
        return segment_uplift(self, by, **kwargs)

    def discover_segments(self, **kwargs) -> pd.DataFrame:
        """Honest tree-discovered segments (see :func:`uplift.effects.segments.discover_segments`)."""
        from uplift.effects.segments import discover_segments

        self._fitted()
        self._training_data()
        return discover_segments(self, **kwargs)

    def explain(self, **kwargs):
        """SHAP explanation of the chosen model's uplift (see :func:`uplift.effects.explanation.explain`)."""
        from uplift.effects.explanation import explain

        self._fitted()
        self._training_data()
        return explain(self, **kwargs)

    def report(self, path: str | Path, **kwargs) -> Path:
        """Write the self-contained HTML report; see :func:`uplift.viz.report.write_report` for the options."""
        from uplift.viz.report import write_report

        self._fitted()
        return write_report(self, path, **kwargs)

    def target(self, data: pd.DataFrame | None = None, **kwargs):
        """Budgeted targeting list with expected value and 95% CI (see :func:`uplift.targeting.targeting_list`)."""
        from uplift.targeting.lists import targeting_list

        self._fitted()
        return targeting_list(self, data, **kwargs)

    def oof_uplift(self, learner: str | None = None) -> np.ndarray:
        """Out-of-fold uplift of the training rows, shape (n, n_treated_arms)."""
        self._fitted()
        return self.crossfit_.uplift[learner or self.best_learner_]

    def predict_uplift(self, data: pd.DataFrame, *, learner: str | None = None, alpha: float = 0.05) -> pd.DataFrame:
        """Predicted uplift for new customers (one row per input row).

        Columns: the id column (when declared and present), ``uplift`` (for several arms: ``uplift_<arm>`` per
        arm, plus ``best_arm`` and ``uplift`` of the best arm), and ``uplift_lower``/``uplift_upper`` when the
        learner gives per-row intervals (``causal_forest``).

        With ``learner="fast"`` the chosen model's distilled scorer answers instead of the fold models (one small
        compiled tree ensemble per arm, about 1M customers a second on two cores; see :mod:`uplift.fit.distill`).
        Its fidelity to the full model, measured at fit time on customers it did not learn from, is in
        :attr:`fast_fidelity`.
        """
        from uplift.fit.distill import FAST

        self._fitted()
        if not isinstance(data, pd.DataFrame):
            raise UpliftInputError(f"expected a pandas DataFrame, got {type(data).__name__}")
        if learner == FAST:
            if getattr(self, "scorer_", None) is None:
                raise UpliftInputError("this model has no fast scorer (saved by an older uplift); refit it, or "
                                       "score with the full model (no --fast)")
            up = self.scorer_.predict(self.schema.encode(data))
            return self._uplift_frame(data, up, None, None)
        learner = learner or self.best_learner_
        if learner not in self.crossfit_.uplift:
            raise UpliftInputError(f"learner {learner!r} was not fitted; fitted: {', '.join(self.crossfit_.uplift)}")
        X = self.schema.encode(data)
        up, lo, hi = predict_uplift(self.crossfit_, X, learner, alpha=alpha)
        return self._uplift_frame(data, up, lo, hi)

    @property
    def fast_fidelity(self) -> pd.DataFrame:
        """How closely the fast scorer reproduces the chosen model, per arm, on sampled customers it did not
        learn from: R², correlation, mean absolute error (outcome units) and overlap of the top 20%."""
        self._fitted()
        scorer = getattr(self, "scorer_", None)
        if scorer is None:
            return pd.DataFrame()
        cols = ["arm", "n", "r2", "corr", "mean_abs_error", "teacher_sd", "top20_overlap", "trees", "on"]
        return pd.DataFrame([{"arm": arm, **fid} for arm, fid in zip(self.arms[1:], scorer.fidelity_, strict=True)],
                            columns=cols)

    def _uplift_frame(self, data: pd.DataFrame, up: np.ndarray, lo, hi) -> pd.DataFrame:
        out = pd.DataFrame(index=pd.RangeIndex(len(data)))
        id_col = self.roles.get("id")
        if id_col and id_col in data.columns:
            out[id_col] = data[id_col].to_numpy()
        treated = self.arms[1:]
        if len(treated) == 1:
            out["uplift"] = up[:, 0]
            if lo is not None:
                out["uplift_lower"], out["uplift_upper"] = lo[:, 0], hi[:, 0]
        else:
            for j, arm in enumerate(treated):
                out[f"uplift_{arm}"] = up[:, j]
                if lo is not None:
                    out[f"uplift_{arm}_lower"], out[f"uplift_{arm}_upper"] = lo[:, j], hi[:, j]
            best = up.argmax(axis=1)
            out["best_arm"] = np.asarray(treated, dtype=object)[best]
            out["uplift"] = up[np.arange(len(up)), best]
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Save the fitted study as a verified model directory (see :mod:`uplift.persist`)."""
        from uplift.persist import save_study

        self._fitted()
        return save_study(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path) -> Study:
        """Load a study saved with :meth:`save`, verifying format version and content hashes first."""
        from uplift.persist import load_study

        return load_study(Path(directory))
