"""The :class:`Study`: a thin notebook façade over one campaign's validated data and its fitted result.

A study holds two things: :attr:`Study.data` (the validated :class:`~uplift.data.campaign.CampaignData`, or
``None`` for a model loaded from disk without its training rows) and :attr:`Study.result` (the frozen
:class:`~uplift.fit.result.FitResult` of :meth:`Study.fit`). Every method hands them to the function that does
the work — :func:`uplift.pipeline.fit_study`, the analyses of :mod:`uplift.effects`, the targeting list of
:mod:`uplift.targeting`, the report of :mod:`uplift.viz.report`, :mod:`uplift.persist` — the same functions the
CLI, the report and Spark call.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.data.campaign import CampaignData, FeatureSchema, campaign_data
from uplift.data.inspect import DataQuality, inspect_data
from uplift.data.sql import read_sql
from uplift.effects.explanation import Explanation, explain, explain_arms
from uplift.effects.segments import discover_segments, segment_uplift
from uplift.errors import UpliftInputError
from uplift.fit.crossfit import CrossFit
from uplift.fit.learners import DEFAULT_LEARNERS
from uplift.fit.models import MAX_TRAIN_ROWS
from uplift.fit.progress import PhaseTimes, ProgressHook
from uplift.fit.result import FitResult
from uplift.persist.store import load_result, save_result
from uplift.pipeline import REFUTERS, check_pre_treatment, e_values, fit_study, refute_effect, training_data
from uplift.targeting.lists import TargetingResult, targeting_list
from uplift.viz.report import write_report


class Study:
    """An uplift study of one campaign.

    Parameters
    ----------
    data : DataFrame
        One row per customer.
    treatment, outcome, control, features, exclude, id, propensity, design
        Column roles; see :func:`uplift.data.campaign_data`. ``outcome`` may be a list: the first is modelled,
        all get average effects.
    min_rows_per_arm : int
        Fewest rows allowed in any arm.
    pre_treatment : list of str or True, optional
        Features known to be measured before the campaign (``True``: all of them). The observational leakage
        check does not flag them as possible post-treatment variables.
    na_values, date_format, as_of, high_cardinality, allow_similar_arms
        How the columns are read: missing-value codes such as ``["-999"]``, the format of ambiguous dates, the
        reference date of the ``days_since_<date column>`` features (default the latest date in the data),
        text columns to model as categories despite their many levels, and accepting an arm label that looks
        like a typo of another; see :func:`uplift.data.campaign_data`. To look at a table before building a
        study (or one a study refuses), use :func:`uplift.data.inspect_data`.
    times : PhaseTimes, optional
        Where the wall time of each phase is recorded (validation here, then every phase of :meth:`fit` and
        :meth:`save`); pass one that already holds earlier phases (the CLI's ``read``) to keep them first.

    Attributes
    ----------
    data : CampaignData or None
        The validated training data (``None`` for a study loaded from disk until :meth:`attach_data`).
    result : FitResult or None
        Everything :meth:`fit` produced (``None`` before fitting).
    times : PhaseTimes
        Wall seconds per phase so far; after :meth:`fit` the same table is ``result.timings``.

    Examples
    --------
    >>> from uplift import Study, simulate_campaign
    >>> df = simulate_campaign(4000, seed=3)
    >>> truth = [c for c in df if c.startswith("true_")] + ["propensity"]
    >>> study = Study(df, treatment="treatment", outcome=["conversion", "revenue"], id="customer_id",
    ...               exclude=truth)
    >>> study = study.fit(learners=["t", "dr"], n_folds=3, n_boot=50)
    >>> study.best_learner_ in {"t", "dr", "ensemble"}
    True
    >>> list(study.ate()["estimand"])    # randomised: the ATT is the ATE, shown once
    ['ATE', 'ATE']
    """

    def __init__(self, data: pd.DataFrame, treatment: str, outcome: str | list[str], *, control: str | None = None,
                 features: list[str] | None = None, exclude: list[str] | None = None, id: str | None = None,
                 propensity: str | None = None, design: str = "auto", min_rows_per_arm: int = 30,
                 pre_treatment: list[str] | bool | None = None, na_values: list[str] | tuple[str, ...] = (),
                 date_format: str | None = None, as_of: str | None = None,
                 high_cardinality: list[str] | bool = (), allow_similar_arms: bool = False,
                 times: PhaseTimes | None = None) -> None:
        self.times = times if times is not None else PhaseTimes()
        with self.times.phase("validate"):
            self.data: CampaignData | None = campaign_data(
                data, treatment, outcome, control=control, features=features, exclude=exclude, id=id,
                propensity=propensity, design=design, min_rows_per_arm=min_rows_per_arm, na_values=na_values,
                date_format=date_format, as_of=as_of, high_cardinality=high_cardinality,
                allow_similar_arms=allow_similar_arms)
        self.pre_treatment = check_pre_treatment(self.data, pre_treatment)
        self.result: FitResult | None = None

    @classmethod
    def from_sql(cls, query: str | None = None, *, db: str | Path | None = None, table: str | None = None,
                 treatment: str, outcome: str | list[str], **roles) -> Study:
        """A study of the table a DuckDB query (or a table of a DuckDB database file) returns, read as
        :func:`uplift.data.read_sql` reads it (the typed reader of Parquet files), then as :class:`Study` takes
        a DataFrame; ``roles`` are :class:`Study`'s other parameters.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from uplift import simulate_campaign
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "sent.parquet"
        >>> simulate_campaign(600, seed=1).to_parquet(path)
        >>> study = Study.from_sql(f"SELECT customer_id, treatment, conversion, recency_days, frequency "
        ...                        f"FROM read_parquet('{path}')", treatment="treatment", outcome="conversion",
        ...                        id="customer_id")
        >>> study.data.n, study.data.X.shape[1], study.roles["id"]
        (600, 2, 'customer_id')
        """
        frame = read_sql(query, db=db, table=table, text=[c for c in (treatment, roles.get("id")) if c],
                         na_values=roles.get("na_values", ()))
        return cls(frame, treatment, outcome, **roles)

    @classmethod
    def from_result(cls, result: FitResult, data: CampaignData | None = None) -> Study:
        """A study around an existing fitted result (e.g. one loaded with :func:`uplift.persist.load_result`),
        optionally with its training data (verify a frame first with :func:`uplift.pipeline.training_data`)."""
        study = object.__new__(cls)
        study.data, study.result = data, result
        study.times = PhaseTimes(result.timings)
        study.pre_treatment = list(result.roles.get("pre_treatment") or [])
        return study

    # ------------------------------------------------------------------ fitting
    def fit(self, learners: list[str] | tuple[str, ...] = DEFAULT_LEARNERS, *, n_folds: int | None = None,
            random_state: int = 0, select: str = "dr_loss", base_regressor: object | None = None,
            base_classifier: object | None = None, n_boot: int = 200, k: float = 0.3,
            expected_split: dict[str, float] | list[str] | None = None, allow_srm: bool = False,
            allow_leakage: bool = False, max_train_rows: int | None = MAX_TRAIN_ROWS, race: bool = False,
            progress: ProgressHook | None = None) -> Study:
        """Cross-fit every learner, evaluate out of fold, pick the best, and estimate average effects.

        Parameters
        ----------
        learners : list of str
            Registry names: ``"s"``, ``"t"``, ``"x"``, ``"r"``, ``"dr"``, ``"dr_linear"``, ``"causal_forest"``,
            ``"uplift_forest"``. With two or more, a stacked ``"ensemble"`` of them is evaluated too.
        n_folds : int, optional
            Cross-fitting folds; default :func:`uplift.fit.crossfit.default_folds` (5).
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
        expected_split : dict or list of str, optional
            Declared split of a randomised study, for the sample-ratio check: ``{arm: share}`` or
            ``["ARM=SHARE", ...]``, shares, percentages or counts (normalised), one per arm. Default: the declared
            propensity when it is constant (e.g. 0.85 treated); else an equal split passes, and an unequal one
            (75/25, 40/20/20/20) is reported but not checked — declare it to have it checked.
        allow_srm, allow_leakage : bool
            Continue although the sample-ratio check or the leakage check failed hard (not recommended).
        max_train_rows : int or None
            Cap on the rows any one base model trains on (default 4,000,000; None: no cap). Beyond it each model
            trains on its own random sample; every row still gets out-of-fold predictions and counts in the
            evaluation. It bounds the memory and time of very large studies (see docs/concepts.md).
        race : bool
            Race the learners first (:func:`uplift.evaluate.selection.race_learners`: successive halving by
            cross-fitted DR loss on growing samples) and fit on every row only the survivors; their ranking stays
            out of fold on all rows. Off by default (its accuracy is measured in benchmarks/results/speed.md).
        progress : ProgressHook, optional
            Progress display (the CLI passes a rich progress bar).
        """
        self.result = fit_study(
            self._training_data(), pre_treatment=self.pre_treatment, learners=learners, n_folds=n_folds,
            random_state=random_state, select=select, base_regressor=base_regressor,
            base_classifier=base_classifier, n_boot=n_boot, k=k, expected_split=expected_split,
            allow_srm=allow_srm, allow_leakage=allow_leakage, max_train_rows=max_train_rows, race=race,
            progress=progress, times=self.times)
        return self

    # ------------------------------------------------------------------ state
    def _fitted(self) -> FitResult:
        if self.result is None:
            raise UpliftInputError("the study is not fitted yet: call .fit() first")
        return self.result

    def _training_data(self) -> CampaignData:
        if self.data is None:
            raise UpliftInputError("this study was loaded from disk without its training data; attach it with "
                                   ".attach_data(frame) (CLI: pass the training file) to use this method")
        return self.data

    def _result_attr(self, name: str):
        if self.result is None:
            raise AttributeError(f"{name}: the study is not fitted yet (call .fit() first)")
        return getattr(self.result, name)

    # Column roles and design: from the fit when there is one (the fit may resolve design "auto").
    @property
    def schema(self) -> FeatureSchema:
        """The features and their encoding."""
        return self.result.schema if self.result is not None else self._training_data().schema

    @property
    def arms(self) -> tuple[str, ...]:
        """Arm labels, control first."""
        return tuple(self.result.arms if self.result is not None else self._training_data().arms)

    @property
    def roles(self) -> dict:
        """Column roles (treatment, outcomes, control, features, exclude, id, propensity, pre-treatment)."""
        if self.result is not None:
            return dict(self.result.roles)
        return {**dict(self._training_data().roles), "pre_treatment": list(self.pre_treatment)}

    @property
    def design(self) -> str:
        """``"rct"`` or ``"observational"``: how the study is analysed."""
        return self.result.design if self.result is not None else self._training_data().design

    @property
    def notes(self) -> list[str]:
        """What validation and the design checks found, in words."""
        return list(self.result.notes if self.result is not None else self._training_data().notes)

    # Fitted state under scikit-learn's names (read-only views of the result).
    crossfit_: CrossFit = property(lambda self: self._result_attr("crossfit"))
    best_learner_: str = property(lambda self: self._result_attr("best_learner"))
    leaderboard_: pd.DataFrame = property(lambda self: self._result_attr("leaderboard"))
    ate_: pd.DataFrame = property(lambda self: self._result_attr("ate"))
    calibration_: pd.DataFrame = property(lambda self: self._result_attr("calibration"))
    diagnostics_ = property(lambda self: self._result_attr("diagnostics"))
    profile_: dict = property(lambda self: self._result_attr("profile"))
    scorer_ = property(lambda self: self._result_attr("scorer"))
    fit_params_: dict = property(lambda self: self._result_attr("fit_params"))
    manifest_: dict = property(lambda self: self._result_attr("manifest"))

    # ------------------------------------------------------------------ results
    def leaderboard(self) -> pd.DataFrame:
        """Cross-fitted scores of every learner (see :func:`uplift.evaluate.leaderboard`)."""
        return self._fitted().leaderboard.copy()

    def ate(self) -> pd.DataFrame:
        """Average effects per arm and outcome with 95% CIs (absolute and relative)."""
        return self._fitted().ate.copy()

    def calibration(self) -> pd.DataFrame:
        """Predicted vs observed uplift by decile of the chosen learner's out-of-fold prediction."""
        return self._fitted().calibration.copy()

    def diagnostics(self) -> dict:
        """Design checks run by :meth:`fit`: SRM, balance (AUC and SMD), overlap and leakage."""
        return dict(self._fitted().diagnostics)

    def attach_data(self, data: pd.DataFrame) -> Study:
        """Re-attach the training data to a study loaded from disk (verified against the saved data hash).

        Segments, explanations and refutation need the training rows; a saved study keeps only their hash.
        """
        self.data = training_data(self._fitted(), data)
        return self

    def inspect(self) -> DataQuality:
        """The data-quality report of the training table (see :func:`uplift.data.inspect_data`): per column its
        role, type, missing share, levels, sentinel codes and outliers; duplicate rows and ids; arm shares."""
        data = self._training_data()
        roles = data.roles
        frame = data.frame.drop(columns=[c for c in data.schema.dates if c in data.frame.columns])
        return inspect_data(frame, treatment=roles["treatment"], outcome=roles["outcomes"], id=roles["id"],
                            na_values=data.schema.na_values)

    def drift(self, data: pd.DataFrame, *, uplift: pd.DataFrame | np.ndarray | None = None, **kwargs) -> dict:
        """How far customers to score are from the training customers (see :meth:`FitResult.drift`)."""
        return self._fitted().drift(data, uplift=uplift, **kwargs)

    def refute(self, *, arm: str | None = None, estimate_method: str = "aipw", max_rows: int = 20_000,
               refuters: tuple[str, ...] = REFUTERS, random_state: int = 0) -> pd.DataFrame:
        """DoWhy refutation of the average effect (see :func:`uplift.pipeline.refute_effect`)."""
        return refute_effect(self._fitted(), self._training_data(), arm=arm, estimate_method=estimate_method,
                             max_rows=max_rows, refuters=refuters, random_state=random_state)

    def e_values(self) -> pd.DataFrame:
        """E-value of every binary-outcome ATE (see :func:`uplift.pipeline.e_values`)."""
        return e_values(self._fitted().ate)

    def segments(self, by: list[str] | str, **kwargs) -> pd.DataFrame:
        """Uplift per segment with 95% AIPW CIs (see :func:`uplift.effects.segment_uplift`)."""
        return segment_uplift(self._fitted(), self._training_data(), by, **kwargs)

    def discover_segments(self, **kwargs) -> pd.DataFrame:
        """Honest tree-discovered segments of every treated arm, or of ``arm=`` (see
        :func:`uplift.effects.discover_segments`)."""
        return discover_segments(self._fitted(), self._training_data(), **kwargs)

    def explain(self, **kwargs) -> Explanation:
        """SHAP explanation of the chosen model's uplift for one arm (see :func:`uplift.effects.explain`)."""
        return explain(self._fitted(), self._training_data(), **kwargs)

    def explain_arms(self, **kwargs) -> dict[str, Explanation]:
        """SHAP explanations of every treated arm, by arm (see :func:`uplift.effects.explain_arms`)."""
        return explain_arms(self._fitted(), self._training_data(), **kwargs)

    def report(self, path: str | Path, **kwargs) -> Path:
        """Write the self-contained HTML report; see :func:`uplift.viz.report.write_report` for the options."""
        return write_report(self._fitted(), path, data=self.data, **kwargs)

    def target(self, data: pd.DataFrame | None = None, **kwargs) -> TargetingResult:
        """Budgeted targeting list with expected value and 95% CI (see :func:`uplift.targeting.targeting_list`).

        ``data``: the customers to target; default the study's own training customers. Either way they are
        scored with the fitted model, so the same customers give the same list from every entry point.
        """
        customers = data if data is not None else self._training_data().frame
        return targeting_list(self._fitted(), customers, **kwargs)

    def oof_uplift(self, learner: str | None = None) -> np.ndarray:
        """Out-of-fold uplift of the training rows, shape (n, n_treated_arms)."""
        return self._fitted().oof_uplift(learner)

    def predict_uplift(self, data: pd.DataFrame, *, learner: str | None = None, alpha: float = 0.05) -> pd.DataFrame:
        """Predicted uplift for new customers (see :meth:`uplift.fit.result.FitResult.predict_uplift`)."""
        return self._fitted().predict_uplift(data, learner=learner, alpha=alpha)

    @property
    def fast_fidelity(self) -> pd.DataFrame:
        """How closely the fast scorer reproduces the chosen model (see :attr:`FitResult.fast_fidelity`)."""
        return self._fitted().fast_fidelity

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Save the fitted study as a verified model directory (see :mod:`uplift.persist`).

        The first save of a fit adds its time to :attr:`times` (the saved table's ``save`` counts serialising the
        models and arrays; the one kept here also counts writing them). Saving a loaded study again keeps the
        timings of the fit that made it, so the same study saves to the same bytes.
        """
        result = self._fitted()
        first = "save" not in result.timings
        start = time.perf_counter()
        out = save_result(result, Path(directory))
        if first:
            result.timings["save"] = self.times.seconds["save"] = time.perf_counter() - start
        return out

    @classmethod
    def load(cls, directory: str | Path, *, trust: bool = False, expect_digest: str | None = None,
             require_signature: bool = False, for_scoring: bool = False, learner: str | None = None) -> Study:
        """Load a study saved with :meth:`save`, verifying digest, signature, format version and hashes first.

        Parameters
        ----------
        directory : str or path
            The model directory.
        trust : bool, default False
            Allow pickled models (forest learners, custom scikit-learn base models): a pickle can run code,
            so only for a directory whose writers you trust. The default learners need no trust.
        expect_digest : str, optional
            Refuse the model unless its digest (:func:`uplift.persist.model_digest`, printed by
            ``uplift fit``) is this one.
        require_signature : bool, default False
            Refuse a model without a valid signature under the key in ``UPLIFT_MODEL_KEY``
            (docs/security.md says what each option protects against).
        for_scoring : bool, default False
            Read only the models that scoring with ``learner`` (default: the chosen one; ``"fast"``: the
            distilled scorer) needs, and no out-of-fold arrays: what ``uplift predict`` loads (see
            :func:`uplift.persist.load_result`). Every file read is verified as in a full load.
        learner : str, optional
            With ``for_scoring``: the learner to score with.
        """
        return cls.from_result(load_result(Path(directory), trust=trust, expect_digest=expect_digest,
                                           require_signature=require_signature, for_scoring=for_scoring,
                                           learner=learner))
