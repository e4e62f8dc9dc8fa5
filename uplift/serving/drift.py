"""Live drift: the last customers the service scored, compared with the training profile saved with the model.

:class:`DriftWindow` keeps the features and predicted uplift of the most recent ``size`` customers in fixed
arrays (a ring buffer: memory does not grow with traffic, and nothing but feature values is kept — no id).
:meth:`DriftWindow.report` hands them to :meth:`FitResult.drift <uplift.fit.result.FitResult.drift>`, the same
comparison ``uplift predict`` and ``uplift target`` print, so the PSI a dashboard shows is the PSI the CLI
would print for the same customers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uplift.errors import UpliftInputError
from uplift.fit.result import FitResult

#: Customers in the rolling window: enough for a PSI over ten bins to read a 0.1 shift above chance.
DRIFT_WINDOW = 5_000
#: Fewest customers in the window before drift is reported (below it the PSI is mostly chance).
MIN_DRIFT_ROWS = 200


class DriftWindow:
    """The most recent ``size`` scored customers (features and predicted uplift), for live drift.

    Examples
    --------
    >>> from uplift.data.campaign import FeatureSchema
    >>> schema = FeatureSchema(("age", "channel"), {"channel": ("app", "web")})
    >>> w = DriftWindow(schema, n_arms=1, size=3)
    >>> w.add(pd.DataFrame({"age": [1.0, 2.0], "channel": ["web", None]}), np.array([[0.1], [0.2]]))
    >>> w.add(pd.DataFrame({"age": [3.0, 4.0], "channel": ["app", "fax"]}), np.array([[0.3], [0.4]]))
    >>> frame, up = w.contents()
    >>> frame["age"].tolist(), frame["channel"].tolist(), up.ravel().tolist()
    ([2.0, 3.0, 4.0], [nan, 'app', 'fax'], [0.2, 0.3, 0.4])
    """

    def __init__(self, schema, n_arms: int, size: int = DRIFT_WINDOW) -> None:
        if not (isinstance(size, int) and size >= 1):
            raise UpliftInputError(f"drift window must be a whole number of customers >= 1, got {size!r}")
        self.schema, self.size = schema, size
        self.numeric = [n for n in schema.names if n not in schema.categories]
        self.categorical = [n for n in schema.names if n in schema.categories]
        self._num = np.empty((size, len(self.numeric)), dtype=np.float64)
        self._cat = np.empty((size, len(self.categorical)), dtype=object)
        self._up = np.empty((size, n_arms), dtype=np.float64)
        self.seen = 0  # customers added since start; the window holds the last min(seen, size)
        self.version = 0

    def __len__(self) -> int:
        return min(self.seen, self.size)

    def add(self, columns, uplift: np.ndarray) -> None:
        """Append scored customers: ``columns`` maps each feature to its values (a DataFrame, or the columns of
        :func:`~uplift.serving.requests.parse_customers`), ``uplift`` is (n, A)."""
        uplift = np.asarray(uplift, dtype=np.float64)
        n = len(uplift)
        keep = slice(max(0, n - self.size), n)  # of a batch larger than the window only its end stays
        n = keep.stop - keep.start
        pos = np.arange(self.seen, self.seen + n) % self.size
        if self.numeric:
            self._num[pos] = np.column_stack([np.asarray(columns[c], dtype=np.float64)[keep] for c in self.numeric])
        if self.categorical:
            self._cat[pos] = np.column_stack([np.asarray(columns[c], dtype=object)[keep] for c in self.categorical])
        self._up[pos] = uplift[keep]
        self.seen += n
        self.version += 1

    def contents(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The window's customers, oldest first, as a feature frame and their uplift (n, A)."""
        n = len(self)
        order = np.arange(self.seen - n, self.seen) % self.size
        cols = {name: self._num[order, j] for j, name in enumerate(self.numeric)}
        cols.update({name: self._cat[order, j] for j, name in enumerate(self.categorical)})
        return pd.DataFrame({name: cols[name] for name in self.schema.names}), self._up[order]

    def report(self, result: FitResult) -> dict | None:
        """The drift of the window against the training profile (None below :data:`MIN_DRIFT_ROWS` customers)."""
        if len(self) < MIN_DRIFT_ROWS:
            return None
        frame, up = self.contents()
        return result.drift(frame, uplift=up)
