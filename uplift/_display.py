"""How a number is shown to an analyst: its unit, its decimals and its interval, in one convention.

One convention for the CLI, the HTML report, the plots and the segment tables:

* an uplift (or average effect) on a 0/1 conversion outcome is shown in **percentage points** (``pp``), one on
  a continuous outcome in the outcome's own units, or in money when a ``currency`` is set;
* money (spend, profit, revenue) carries the ``currency`` symbol when one is set (default: none, the units of
  the cost and value the analyst gave);
* every estimate is followed by its interval in brackets and then its unit: ``+2.10 [1.40, 2.80] pp``; the
  number of decimals shows the interval's width to about three significant digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Unit labels of an effect per outcome kind: (short, long).
PP = ("pp", "percentage points")
OUTCOME_UNITS = ("", "outcome units")


@dataclass(frozen=True)
class Unit:
    """Display scale and labels of an effect.

    Examples
    --------
    >>> effect_unit("binary")
    Unit(scale=100.0, short='pp', long='percentage points')
    >>> effect_unit("continuous").long
    'outcome units'
    """

    scale: float
    short: str
    long: str

    @property
    def label(self) -> str:
        """The unit as a table names it: the short label, or the long one when there is none.

        Examples
        --------
        >>> effect_unit("binary").label, effect_unit("continuous").label, effect_unit("continuous", "$").label
        ('pp', 'outcome units', '$')
        """
        return self.short or self.long


def effect_unit(kind: str, currency: str | None = None) -> Unit:
    """The unit an uplift of this outcome kind is shown in (``"binary"``: percentage points)."""
    if kind == "binary":
        return Unit(100.0, *PP)
    if currency:
        return Unit(1.0, currency, currency)
    return Unit(1.0, *OUTCOME_UNITS)


def decimals(lower: float, upper: float, scale: float = 1.0) -> int:
    """Decimals that show an interval of this width with about three significant digits.

    Examples
    --------
    >>> decimals(0.014, 0.028, 100)
    2
    >>> decimals(100.0, 900.0)
    0
    """
    width = abs(float(upper) - float(lower)) * scale
    if not math.isfinite(width) or width == 0:
        return 3
    return int(min(6, max(0, 2 - math.floor(math.log10(width)))))


def _float(x: object) -> float:
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def fmt_number(x: object, digits: int = 3) -> str:
    """A number with thousands separators, ``n/a`` when missing or not finite.

    Examples
    --------
    >>> fmt_number(12345.678, 1)
    '12,345.7'
    >>> fmt_number(None)
    'n/a'
    """
    if isinstance(x, str):
        return x
    v = _float(x)
    return f"{v:,.{digits}f}" if math.isfinite(v) else "n/a"


def fmt_ci(estimate: object, lower: object = None, upper: object = None, *, scale: float = 1.0, unit: str = "",
           signed: bool = False, digits: int | None = None) -> str:
    """An estimate with its interval, in the display scale and unit: ``+1.16 [0.00, 2.32] pp``.

    A missing interval shows the estimate alone; a missing estimate shows ``n/a``.

    Examples
    --------
    >>> fmt_ci(0.021, 0.014, 0.028, scale=100, unit="pp", signed=True)
    '+2.10 [1.40, 2.80] pp'
    >>> fmt_ci(1234.5, 1000.0, 1500.0, unit="$")
    '1,234 [1,000, 1,500] $'
    >>> fmt_ci(float("nan"), 0, 1)
    'n/a'
    """
    est, lo, hi = _float(estimate), _float(lower), _float(upper)
    if not math.isfinite(est):
        return "n/a"
    d = decimals(lo, hi, scale) if digits is None else digits
    sign = "+" if signed else ""
    text = f"{est * scale:{sign},.{d}f}"
    if math.isfinite(lo) and math.isfinite(hi):
        text += f" [{lo * scale:,.{d}f}, {hi * scale:,.{d}f}]"
    return f"{text} {unit}".rstrip()


def fmt_effect(estimate: object, lower: object, upper: object, kind: str, *, currency: str | None = None,
               digits: int | None = None) -> str:
    """An uplift or average effect and its interval in the unit of its outcome kind.

    Examples
    --------
    >>> fmt_effect(0.021, 0.014, 0.028, "binary")
    '+2.10 [1.40, 2.80] pp'
    >>> fmt_effect(1.5, -0.25, 3.25, "continuous")
    '+1.50 [-0.25, 3.25]'
    """
    u = effect_unit(kind, currency)
    return fmt_ci(estimate, lower, upper, scale=u.scale, unit=u.short, signed=True, digits=digits)


def fmt_pct(estimate: object, lower: object = None, upper: object = None) -> str:
    """A share or relative lift (0.12 = 12%) with its interval.

    Examples
    --------
    >>> fmt_pct(0.12, 0.05, 0.19)
    '+12.0 [5.0, 19.0] %'
    """
    return fmt_ci(estimate, lower, upper, scale=100.0, unit="%", signed=True)


def fmt_money(estimate: object, lower: object = None, upper: object = None, *, currency: str | None = None,
              signed: bool = False, digits: int | None = 0) -> str:
    """Money (spend, profit, revenue) with its interval, with the currency when one is set.

    Whole units by default; ``digits`` shows cents (or fewer), ``digits=None`` as many decimals as the
    interval's width needs (money per customer).

    Examples
    --------
    >>> fmt_money(1234.4, 800.0, 1700.0, currency="$")
    '1,234 [800, 1,700] $'
    >>> fmt_money(-50.0, signed=True)
    '-50'
    >>> fmt_money(0.1234, 0.05, 0.2, currency="$", signed=True, digits=None)
    '+0.123 [0.050, 0.200] $'
    """
    return fmt_ci(estimate, lower, upper, unit=currency or "", signed=signed, digits=digits)


def fmt_level(x: object) -> str:
    """A value as an analyst writes it: integers without decimals, other numbers to 4 significant digits.

    Examples
    --------
    >>> fmt_level(3.0), fmt_level(0.123456), fmt_level("web")
    ('3', '0.1235', 'web')
    """
    if isinstance(x, str):
        return x
    v = _float(x)
    if not math.isfinite(v):
        return str(x)
    return str(int(v)) if v.is_integer() else f"{v:.4g}"
