"""Errors raised at the boundary of the toolkit.

An :class:`UpliftInputError` always carries a one-line message that names the column, row
or file at fault and says what to do. The CLI prints it without a traceback and exits 2.
"""

from __future__ import annotations


class UpliftInputError(ValueError):
    """Bad input from the user: one line, naming the column/row/problem and the fix.

    Examples
    --------
    >>> raise UpliftInputError("column 'spend' is missing; available: a, b")
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: column 'spend' is missing; available: a, b
    """

    def __init__(self, message: str, *, cli: str | None = None) -> None:
        super().__init__(" ".join(str(message).split()))
        #: The same message for a command-line user: CLI flags instead of Python arguments (None: the same).
        self.cli_message = " ".join(str(cli).split()) if cli is not None else None


class DesignCheckError(UpliftInputError):
    """A design check (SRM, balance, overlap, leakage) failed hard.

    Override with the explicit flag named in the message (e.g. ``allow_srm=True``; the CLI names its own
    flag, ``--allow-srm``, through :attr:`UpliftInputError.cli_message`).
    """
