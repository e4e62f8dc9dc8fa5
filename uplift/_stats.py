"""One estimate with its uncertainty, and the normal quantile behind every 95% interval of the package.

Every interval the toolkit reports is ``estimate ± z·se`` (normal approximation) or a bootstrap percentile
interval; :func:`z_value` is the one place a confidence level becomes a ``z``, and :class:`Estimate` is the one
record an estimate travels in (``estimate``, ``se``, ``lower``, ``upper``), as econml's inference objects and
grf's ``estimate``/``std.err`` pairs do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from statistics import NormalDist

#: The confidence level of every interval the package reports unless a caller asks for another.
CONFIDENCE = 0.95


@lru_cache(maxsize=32)
def z_value(confidence: float = CONFIDENCE) -> float:
    """Two-sided normal quantile for a confidence level: 1.95996... for 95%.

    Examples
    --------
    >>> round(z_value(0.95), 4)
    1.96
    >>> round(z_value(0.90), 4)
    1.6449
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    # the standard library's quantile (accurate to ~1e-15): scipy.stats would cost every import ~0.4 s
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def z_for_alpha(alpha: float) -> float:
    """``z`` of a two-sided test at level ``alpha`` (the ``1 - alpha`` interval).

    Examples
    --------
    >>> z_for_alpha(0.05) == z_value(0.95)
    True
    """
    return z_value(round(1.0 - float(alpha), 12))


#: ``z`` of the 95% interval (the package's default).
Z95 = z_value(CONFIDENCE)


@dataclass(frozen=True)
class Estimate:
    """An estimate and its uncertainty: standard error and confidence interval.

    Parameters
    ----------
    estimate : float
        The point estimate.
    se : float
        Its standard error (``nan`` when the interval does not come from one, e.g. a bootstrap percentile CI).
    lower, upper : float
        The confidence interval.
    confidence : float
        The interval's confidence level.

    Examples
    --------
    >>> e = Estimate.from_se(0.02, 0.005)
    >>> round(e.lower, 4), round(e.upper, 4)
    (0.0102, 0.0298)
    >>> e.scaled(100).to_dict("uplift")["uplift_upper"].__round__(2)
    2.98
    >>> e.covers(0.0)
    False
    """

    estimate: float
    se: float
    lower: float
    upper: float
    confidence: float = CONFIDENCE

    @classmethod
    def from_se(cls, estimate: float, se: float, confidence: float = CONFIDENCE) -> Estimate:
        """The normal-approximation interval ``estimate ± z·se``."""
        z = z_value(confidence)
        estimate, se = float(estimate), float(se)
        return cls(estimate, se, estimate - z * se, estimate + z * se, confidence)

    def scaled(self, factor: float) -> Estimate:
        """The same estimate in other units (``factor`` > 0: e.g. 100 for percentage points)."""
        lo, hi = sorted((self.lower * factor, self.upper * factor))
        return replace(self, estimate=self.estimate * factor, se=self.se * abs(factor), lower=lo, upper=hi)

    def covers(self, value: float) -> bool:
        """Whether the interval contains ``value``."""
        return bool(self.lower <= value <= self.upper)

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return not self.covers(0.0)

    def to_dict(self, name: str = "estimate") -> dict[str, float]:
        """Flat fields ``name``, ``name_se``, ``name_lower``, ``name_upper`` (for tables and JSON).

        Non-finite numbers become ``None`` in JSON elsewhere; here they stay floats.
        """
        return {name: self.estimate, f"{name}_se": self.se, f"{name}_lower": self.lower,
                f"{name}_upper": self.upper}

    @classmethod
    def from_dict(cls, fields: dict, name: str = "estimate", confidence: float = CONFIDENCE) -> Estimate:
        """Read back the flat fields written by :meth:`to_dict` (a missing ``_se`` is ``nan``)."""
        nan = float("nan")
        get = fields.get
        return cls(float(get(name, nan)), float(get(f"{name}_se", nan) if get(f"{name}_se") is not None else nan),
                   float(get(f"{name}_lower", nan)), float(get(f"{name}_upper", nan)), confidence)

    def __format__(self, spec: str) -> str:
        spec = spec or ".4g"
        if math.isfinite(self.lower) and math.isfinite(self.upper):
            return f"{self.estimate:{spec}} [{self.lower:{spec}}, {self.upper:{spec}}]"
        return f"{self.estimate:{spec}}"
