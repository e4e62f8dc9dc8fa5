"""Areas under the uplift and Qini curves of many bootstrap resamples, in one compiled pass per resample.

The vectorised engine of :mod:`uplift.evaluate.metrics` reads each resample's curve off (B, n) cumulative sums
and takes its trapezoid area as a few dot products; each of those passes materialises another (B, n) float64
temporary (the ratios, the trapezoid spans, the sums at the ends of tied groups), and they cost more than the
cumulative sums themselves. :func:`curve_areas` walks the same cumulative sums once per resample, reading them at
the ends of the tied groups, and accumulates the same trapezoid sums (``tests/evaluate/test_metrics.py`` checks
it against :func:`uplift.evaluate.metrics._curve_areas`; only the order of the additions differs, intervals agree
to 3e-14 relative). One learner's 200 resamples of 100,000 rows with distinct scores, on one core: 0.89 -> 0.40 s
for a randomised design, 1.12 -> 0.80 s with dr (whose perfect curve still takes the vectorised path).

Compiled by numba on first use (cached on disk where the install is writable), without threads: the
leaderboard already scores its learners side by side.
"""

from __future__ import annotations

import numpy as np

from uplift._numba import cacheable

_KERNEL: list = []


def _areas_py(s0, s1, s2, s3, ends, observational, out_uplift, out_qini):
    """Trapezoid sums of each resample b over the points j = ends[0], ends[1], ...

    x_j = s0 + s1 (customers); span_j = x_{j+1} - x_{j-1} (x before the first point is 0, the last point has no
    right neighbour). Raw: uplift = sum (s2/max(s0,1) - s3/max(s1,1)) x span / 2 and
    qini = sum (s2 - s3/max(s1,1) s0) span / 2; with dr (s2 + s3 the dr sums): uplift = sum (s2 + s3) span / 2,
    and ``out_qini`` is left to the caller (uplift times the overall treated share).
    """
    n_boot, n_points = s0.shape[0], ends.shape[0]
    for b in range(n_boot):
        up_t = up_c = q_t = q_c = dr = 0.0
        prev = 0.0
        x = np.float64(s0[b, ends[0]]) + np.float64(s1[b, ends[0]])
        for j in range(n_points):
            e = ends[j]
            if j + 1 < n_points:
                nxt_end = ends[j + 1]
                nxt = np.float64(s0[b, nxt_end]) + np.float64(s1[b, nxt_end])
                span = nxt - prev
            else:  # the last point (x before the first is 0, so a single point spans x)
                nxt = 0.0
                span = x - prev
            treated, control = np.float64(s0[b, e]), np.float64(s1[b, e])
            treated_out, control_out = np.float64(s2[b, e]), np.float64(s3[b, e])
            if observational:
                dr += (treated_out + control_out) * span
            else:
                control_mean = control_out / max(control, 1.0)
                n_span = x * span
                up_t += treated_out / max(treated, 1.0) * n_span
                up_c += control_mean * n_span
                q_t += treated_out * span
                q_c += control_mean * (treated * span)
            prev, x = x, nxt
        if observational:
            out_uplift[b] = dr / 2.0
        else:
            out_uplift[b] = (up_t - up_c) / 2.0
            out_qini[b] = (q_t - q_c) / 2.0


def _kernel():
    if not _KERNEL:
        import numba

        _KERNEL.append(numba.njit(nogil=True, cache=cacheable(__file__))(_areas_py))
    return _KERNEL[0]


def curve_areas(sums: list[np.ndarray], ends: np.ndarray | None, observational: bool) -> dict[str, np.ndarray]:
    """Areas under the uplift curve (``"uplift"``) and, for the raw design, the Qini curve (``"qini"``) of
    each resample, from the cumulative N_T, N_C, Y_T, Y_C (each (B, n)) read at ``ends`` (None: every row)."""
    s0, s1, s2, s3 = (np.ascontiguousarray(s) for s in sums)
    n_boot = s0.shape[0]
    ends = np.arange(s0.shape[1], dtype=np.int64) if ends is None else np.asarray(ends, dtype=np.int64)
    up, qini = np.empty(n_boot), np.empty(n_boot)
    _kernel()(s0, s1, s2, s3, ends, observational, up, qini)
    return {"uplift": up} if observational else {"uplift": up, "qini": qini}
