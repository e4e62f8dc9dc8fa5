"""Drift: are the customers being scored still like the customers the model learned from?

An uplift model is only trustworthy on customers like those of the campaign it was trained on. The report
compares, feature by feature, the scoring data with the training distribution: the population stability
index (PSI) over the training deciles of a numeric feature or the levels of a categorical one, the share of
categories never seen in training, and the share of missing values; and the PSI of the predicted uplift.

The training distribution is summarised once by :func:`training_profile` (small and JSON-serialisable, so a
saved model carries it); :func:`drift_from_profile` compares new data with it, and :func:`drift_report` is
the same comparison straight from the training frame. PSI over the training deciles: below 0.1 no real
change, 0.1-0.2 moderate, above 0.2 a shift worth acting on (the usual credit-scoring reading).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uplift.data.campaign import FeatureSchema, factorized_text
from uplift.errors import UpliftInputError

PROFILE_VERSION = 1
N_BINS = 10
#: Floor for a bin share inside the PSI logarithm: an empty bin means "rare", not "impossible".
SHARE_FLOOR = 1e-4
#: Simulated samples for the chance level of the PSI (cheap: multinomial draws of a few bin counts).
N_BOOT = 2000


def psi(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Population stability index ``sum((a - e) * ln(a / e))`` between bin shares (last axis).

    Examples
    --------
    >>> round(float(psi(np.array([0.5, 0.5]), np.array([0.25, 0.75]))), 4)
    0.2747
    """
    e = np.maximum(np.asarray(expected, dtype=float), SHARE_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), SHARE_FLOOR)
    return ((a - e) * np.log(a / e)).sum(axis=-1)


def _quantile_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Interior cut points at the training quantiles; ties (discrete features) collapse to fewer bins."""
    if len(values) == 0:
        return np.array([])
    return np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1]))


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of ``values`` in the bins (-inf, e1], (e1, e2], ..., (ek, inf)."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def _numeric(frame: pd.DataFrame, schema: FeatureSchema) -> np.ndarray:
    """The numeric features as float, encoded exactly as the model sees them (bad values raise)."""
    numeric = [n for n in schema.names if n not in schema.categories]
    sub = FeatureSchema(tuple(numeric), {})
    return sub.encode(frame).astype(np.float64)


def _level_codes(col: pd.Series, levels) -> tuple[np.ndarray, np.ndarray]:
    """The index in ``levels`` of each present value of ``col`` (compared as text; -1: a level not in
    ``levels``), and which values are missing. Distinct values are turned into text once (factorize): a
    500,000-row batch no longer turns every value into a string."""
    index, text = factorized_text(col)
    level_of = pd.Index(list(levels)).get_indexer(text)
    missing = index < 0
    return level_of[index[~missing]], missing


def _check(frame: pd.DataFrame, schema: FeatureSchema, name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise UpliftInputError(f"the {name} data must be a pandas DataFrame, got {type(frame).__name__}")
    if not isinstance(schema, FeatureSchema):
        raise UpliftInputError(f"schema must be an uplift.data.campaign.FeatureSchema, got {type(schema).__name__}")
    missing = [n for n in schema.names if n not in frame.columns]
    if missing:
        raise UpliftInputError(f"feature column(s) {', '.join(map(repr, missing))} missing from the {name} data; "
                               f"the model uses: {', '.join(schema.names)}")
    if len(frame) == 0:
        raise UpliftInputError(f"the {name} data has no rows")


def _uplift_matrix(uplift, n: int, name: str) -> np.ndarray:
    u = np.asarray(uplift, dtype=float)
    u = u[:, None] if u.ndim == 1 else u
    if u.ndim != 2 or u.shape[0] != n:
        raise UpliftInputError(f"{name} must hold one predicted uplift per row ({n} rows), "
                               f"got shape {np.shape(uplift)}")
    if not np.isfinite(u).all():
        raise UpliftInputError(f"{name} has missing or infinite values; score every row")
    return u


def training_profile(frame: pd.DataFrame, schema: FeatureSchema, *, uplift=None, n_bins: int = N_BINS) -> dict:
    """Summarise the training distribution of every feature (and of the predicted uplift) for later drift checks.

    Parameters
    ----------
    frame : DataFrame
        The training customers (at least the schema's feature columns).
    schema : FeatureSchema
        The model's features and category levels.
    uplift : array (n,) or (n, n_coupons), optional
        Predicted (out-of-fold) uplift of the training customers.
    n_bins : int
        Quantile bins per numeric feature.

    Returns
    -------
    dict
        JSON-serialisable: ``{"version", "n_rows", "features": {name: {...}}, "uplift": [...] | None}``; a numeric
        feature holds ``edges`` (interior quantile cut points), ``shares`` (training share per bin) and
        ``missing``; a categorical one ``levels``, ``shares`` and ``missing``.

    Examples
    --------
    >>> import json, pandas as pd
    >>> from uplift.data.campaign import FeatureSchema
    >>> df = pd.DataFrame({"age": range(100), "channel": ["web", "app"] * 50})
    >>> prof = training_profile(df, FeatureSchema.infer(df))
    >>> prof["features"]["channel"]["shares"], len(prof["features"]["age"]["shares"])
    ([0.5, 0.5], 10)
    >>> _ = json.dumps(prof)
    """
    _check(frame, schema, "training")
    if not (isinstance(n_bins, int) and n_bins >= 2):
        raise UpliftInputError(f"n_bins must be a whole number >= 2, got {n_bins!r}")
    n = len(frame)
    num = _numeric(frame, schema)
    features, j = {}, 0
    for name in schema.names:
        if name in schema.categories:
            levels = list(schema.categories[name])
            codes, missing = _level_codes(frame[name], levels)
            shares = np.bincount(codes[codes >= 0], minlength=len(levels)) / max(int((~missing).sum()), 1)
            features[name] = {"kind": "categorical", "levels": levels, "shares": shares.tolist(),
                              "missing": float(missing.mean()), "n": int((~missing).sum())}
        else:
            x = num[:, j]
            j += 1
            ok = ~np.isnan(x)
            edges = _quantile_edges(x[ok], n_bins)
            features[name] = {"kind": "numeric", "edges": edges.tolist(), "shares": _bin_shares(x[ok], edges).tolist(),
                              "missing": float((~ok).mean()), "n": int(ok.sum())}
    prof_uplift = None
    if uplift is not None:
        u = _uplift_matrix(uplift, n, "uplift")
        prof_uplift = []
        for k in range(u.shape[1]):
            edges = _quantile_edges(u[:, k], n_bins)
            prof_uplift.append({"edges": edges.tolist(), "shares": _bin_shares(u[:, k], edges).tolist(), "n": n})
    return {"version": PROFILE_VERSION, "n_rows": n, "n_bins": n_bins, "features": features, "uplift": prof_uplift}


def psi_noise(shares: np.ndarray, n_train: int, n_score: int, rng: np.random.Generator,
              level: float = 0.95) -> float:
    """PSI that chance alone exceeds with probability ``1 - level`` when nothing has changed.

    The PSI of two finite samples of one distribution is positive, and small scoring batches can show a
    large PSI by luck. With at least 20 expected customers in every bin on both sides, PSI x n_train n_score /
    (n_train + n_score) is close to chi-square with (bins - 1) degrees of freedom (PSI is the symmetrised
    Kullback-Leibler divergence, locally the chi-square distance); with fewer, both samples are redrawn
    (multinomial) from the training shares at their actual sizes.

    Examples
    --------
    >>> round(psi_noise(np.full(10, 0.1), 6000, 3000, np.random.default_rng(0)), 4)
    0.0085
    """
    from scipy.special import gammaincinv  # chi2.ppf's own formula: scipy.stats costs ~0.5 s more to import
    if n_train < 1 or n_score < 1:
        return float("nan")
    p = np.asarray(shares, dtype=float)
    p = p[p > 0] / p.sum()
    if len(p) < 2:
        return 0.0
    if p.min() * min(n_train, n_score) >= 20:
        return float(2 * gammaincinv((len(p) - 1) / 2, level) * (1 / n_train + 1 / n_score))
    bp = rng.multinomial(n_train, p, size=N_BOOT) / n_train
    bq = rng.multinomial(n_score, p, size=N_BOOT) / n_score
    return float(np.quantile(psi(bp, bq), level))


def _check_profile(profile: dict, schema: FeatureSchema) -> dict:
    if not isinstance(profile, dict) or profile.get("version") != PROFILE_VERSION or "features" not in profile:
        raise UpliftInputError("not a training profile from uplift.design.drift.training_profile (or from another "
                               "version); re-create it from the training data")
    feats = profile["features"]
    absent = [n for n in schema.names if n not in feats]
    if absent:
        raise UpliftInputError(f"the training profile has no entry for feature(s) {', '.join(map(repr, absent))}; "
                               "it was made for another model")
    for name in schema.names:
        kind = "categorical" if name in schema.categories else "numeric"
        if feats[name]["kind"] != kind:
            raise UpliftInputError(f"feature {name!r} is {kind} in the schema but {feats[name]['kind']} in the "
                                   "training profile; they belong to different models")
    return feats


def drift_from_profile(profile: dict, score: pd.DataFrame, schema: FeatureSchema, *, score_uplift=None,
                       psi_warn: float = 0.2, unseen_warn: float = 0.05, missing_warn: float = 0.05,
                       random_state: int = 0) -> dict:
    """Compare the data to score with a saved training profile (see :func:`drift_report` for the result).

    Examples
    --------
    >>> from uplift.datasets import simulate_campaign
    >>> from uplift.data.campaign import FeatureSchema
    >>> train, new = simulate_campaign(3000, seed=1), simulate_campaign(3000, seed=2)
    >>> schema = FeatureSchema.infer(train[["recency_days", "monetary", "channel"]])
    >>> prof = training_profile(train, schema)
    >>> drift_from_profile(prof, new, schema)["drifted"]
    False
    >>> new["monetary"] *= 1.5  # prices went up
    >>> drift_from_profile(prof, new, schema)["warnings"][0][:22]
    "feature 'monetary' has"
    """
    feats = _check_profile(profile, schema)
    if isinstance(score, pd.DataFrame) and isinstance(schema, FeatureSchema):
        score = schema.prepare(score)  # dates as days before the training reference date, missing codes missing
    _check(score, schema, "scoring")
    for name, thr in (("psi_warn", psi_warn), ("unseen_warn", unseen_warn), ("missing_warn", missing_warn)):
        if not thr > 0:
            raise UpliftInputError(f"{name} must be positive, got {thr!r}")
    rng = np.random.default_rng(random_state)
    n = len(score)
    num = _numeric(score, schema)
    # Chance level with a Bonferroni split over all PSIs checked: with many features one of them would
    # otherwise cross its own 95% level by luck in a small scoring batch.
    n_checks = len(schema.names) + (len(profile.get("uplift") or []) if score_uplift is not None else 0)
    level = 1 - 0.05 / n_checks
    rows, warnings, j = [], [], 0
    for name in schema.names:
        f = feats[name]
        p = np.asarray(f["shares"], dtype=float)
        if f["kind"] == "categorical":
            codes, missing = _level_codes(score[name], f["levels"])
            n_ok = int((~missing).sum())
            unseen = float((codes < 0).sum() / n_ok) if n_ok else 0.0
            # Unseen levels form one extra bin (empty in training), so they move the PSI as well.
            q = np.bincount(np.where(codes < 0, len(p), codes), minlength=len(p) + 1) / max(n_ok, 1)
            p = np.append(p, 0.0)
        else:
            x = num[:, j]
            j += 1
            missing = np.isnan(x)
            n_ok = int((~missing).sum())
            q = _bin_shares(x[~missing], np.asarray(f["edges"], dtype=float))
            unseen = 0.0
        value = float(psi(p, q)) if n_ok else float("nan")
        noise = psi_noise(p, int(f["n"]), n_ok, rng, level)
        miss = float(missing.mean())
        rows.append({"feature": name, "kind": f["kind"], "psi": value, "psi_noise": noise,
                     "unseen_share": unseen, "missing_share_train": f["missing"], "missing_share_score": miss})
        # A shift must be both material (psi_warn) and more than chance at these sample sizes (psi_noise).
        if value > max(psi_warn, noise):
            warnings.append(f"feature {name!r} has shifted: PSI {value:.3f} > {psi_warn} (chance alone: "
                            f"below {noise:.3f})")
        if unseen > unseen_warn:
            warnings.append(f"feature {name!r}: {unseen:.1%} of values are categories never seen in training "
                            f"(> {unseen_warn:.0%}); the model treats them as missing")
        if miss - f["missing"] > missing_warn:
            warnings.append(f"feature {name!r}: {miss:.1%} missing vs {f['missing']:.1%} in training "
                            f"(rise > {missing_warn:.0%}); check the data feed")
    table = pd.DataFrame(rows)
    table["drifted"] = ((table["psi"] > np.maximum(psi_warn, table["psi_noise"]))
                        | (table["unseen_share"] > unseen_warn)
                        | (table["missing_share_score"] - table["missing_share_train"] > missing_warn))

    uplift_psi = None
    if score_uplift is not None:
        if not profile.get("uplift"):
            raise UpliftInputError("score_uplift given but the training profile holds no predicted uplift; "
                                   "make the profile with training_profile(..., uplift=...)")
        u = _uplift_matrix(score_uplift, n, "score_uplift")
        if u.shape[1] != len(profile["uplift"]):
            raise UpliftInputError(f"score_uplift has {u.shape[1]} column(s) but the training profile "
                                   f"{len(profile['uplift'])} (one per coupon)")
        uplift_psi = []
        for k, ref in enumerate(profile["uplift"]):
            p = np.asarray(ref["shares"], dtype=float)
            q = _bin_shares(u[:, k], np.asarray(ref["edges"], dtype=float))
            value, noise = float(psi(p, q)), psi_noise(p, int(ref["n"]), n, rng, level)
            uplift_psi.append({"psi": value, "psi_noise": noise})
            if value > max(psi_warn, noise):
                arm = f" (coupon {k + 1})" if len(profile["uplift"]) > 1 else ""
                warnings.append(f"predicted uplift{arm} has shifted: PSI {value:.3f} > {psi_warn}; "
                                "the targeting list rests on customers unlike the training campaign")
    return {"features": table, "uplift_psi": uplift_psi, "warnings": warnings, "drifted": bool(warnings),
            "n_train": int(profile["n_rows"]), "n_score": n,
            "thresholds": {"psi": psi_warn, "unseen": unseen_warn, "missing": missing_warn}}


def drift_report(train: pd.DataFrame, score: pd.DataFrame, schema: FeatureSchema, *, train_uplift=None,
                 score_uplift=None, psi_warn: float = 0.2, unseen_warn: float = 0.05, missing_warn: float = 0.05,
                 n_bins: int = N_BINS, random_state: int = 0) -> dict:
    """Per-feature drift between training and scoring data, and drift of the predicted uplift.

    Parameters
    ----------
    train, score : DataFrame
        Training customers and customers to score (the schema's feature columns at least).
    schema : FeatureSchema
        The model's features and category levels (``study.schema``).
    train_uplift, score_uplift : array, optional
        Predicted uplift of both groups (training: out of fold), for the PSI of the prediction.
    psi_warn, unseen_warn, missing_warn : float
        Warn above this PSI, this share of unseen categories, this rise in the share missing.
    n_bins : int
        Training quantile bins per numeric feature.
    random_state : int
        Seed of the simulated noise level of the PSI.

    Returns
    -------
    dict
        ``features`` (DataFrame: ``psi``, ``psi_noise`` (the PSI that chance alone stays below at these
        sample sizes, 95% jointly over all features; a warning needs PSI above both ``psi_warn`` and
        ``psi_noise``, so a small scoring batch does not raise false alarms), ``unseen_share``,
        ``missing_share_train``, ``missing_share_score``, ``drifted`` per feature), ``uplift_psi`` (list with one
        dict per coupon, or None), ``warnings`` (list of sentences), ``drifted`` (bool), sizes and thresholds.

    Examples
    --------
    >>> from uplift.datasets import simulate_campaign
    >>> from uplift.data.campaign import FeatureSchema
    >>> train, new = simulate_campaign(3000, seed=1), simulate_campaign(3000, seed=2)
    >>> schema = FeatureSchema.infer(train[["recency_days", "frequency", "channel"]])
    >>> rep = drift_report(train, new, schema)
    >>> rep["drifted"], list(rep["features"]["feature"])
    (False, ['recency_days', 'frequency', 'channel'])
    """
    profile = training_profile(train, schema, uplift=train_uplift, n_bins=n_bins)
    return drift_from_profile(profile, score, schema, score_uplift=score_uplift, psi_warn=psi_warn,
                              unseen_warn=unseen_warn, missing_warn=missing_warn, random_state=random_state)
