"""Atomic writes: every output of the toolkit replaces its target whole, never an input of the same command.

A hidden temp file (``.<name>.<random>.tmp``) in the target's directory is written, fsynced and
``os.replace``-d onto the target, so a crash leaves the old file or the new one, never half of one.
:func:`check_output_path` fails before any work when the output is an input file (also through hard links or a
case-insensitive file system), a directory, or in a directory that does not exist or cannot be written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from uplift.errors import UpliftInputError

PathLike = str | os.PathLike


# ---------------------------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------------------------
_UMASK_LOCK = threading.Lock()


def umask() -> int:
    # Read without changing it where the kernel allows; os.umask can only be read by setting it.
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; directories cannot be opened this way on Windows.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)  # hard links, case-insensitive file systems
    return False


def _check_target(path: Path, protect: PathLike | Iterable[PathLike] | None) -> None:
    if protect is not None:
        guarded = [protect] if isinstance(protect, str | os.PathLike) else list(protect)
        for inp in guarded:
            if _same_file(path, Path(inp)):
                raise UpliftInputError(f"refusing to overwrite the input file {path} with output; choose a "
                                       "different output path")
    parent = path.parent
    if not parent.is_dir():
        raise UpliftInputError(f"cannot write {path.name}: directory {parent} does not exist; "
                               "create it first")
    if path.is_dir():
        raise UpliftInputError(f"cannot write {path}: it is a directory; give a file name")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UpliftInputError(f"cannot write {path.name}: directory {parent} is not writable; choose "
                               "another output directory")


def check_output_path(path: PathLike, protect: PathLike | Iterable[PathLike] | None = None) -> None:
    """Fail early (before any work) when ``path`` cannot be written or would overwrite an input file."""
    _check_target(Path(path), protect)


@contextlib.contextmanager
def atomic_file(path: PathLike, protect: PathLike | Iterable[PathLike] | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only once it is completely written and fsynced."""
    path = Path(path)
    _check_target(path, protect)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise UpliftInputError(f"cannot write {path.name}: directory {path.parent} is not writable "
                               f"({err.strerror}); choose another output directory") from None
    tmp = Path(tmp_name)
    try:
        # mkstemp creates the file 0600; give the result the permissions a plain open() would have, or keep
        # those of the file being replaced.
        with os.fdopen(fd, "wb") as fh:
            mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~umask()
            if os.chmod in os.supports_fd:
                os.chmod(fh.fileno(), mode)
            else:
                os.chmod(tmp, mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: PathLike, data: bytes, *,
                       protect: PathLike | Iterable[PathLike] | None = None) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, ``os.replace``).

    Parameters
    ----------
    path : str or path-like
        Target file; its directory must exist and be writable.
    data : bytes
        The complete new content.
    protect : path-like or iterable of path-like, optional
        Input files that must never be overwritten (an error is raised if ``path`` is one of them).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "note.bin"
    >>> atomic_write_bytes(p, b"\\x00\\x01")
    >>> p.read_bytes()
    b'\\x00\\x01'
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"atomic_write_bytes needs bytes, got {type(data).__name__}")
    with atomic_file(path, protect) as fh:
        fh.write(data)


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8",
                      protect: PathLike | Iterable[PathLike] | None = None) -> None:
    """Write ``text`` atomically, encoded as ``encoding``, with no newline translation.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "report.html"
    >>> atomic_write_text(p, "<p>café</p>\\n")
    >>> p.read_bytes()
    b'<p>caf\\xc3\\xa9</p>\\n'
    """
    atomic_write_bytes(path, text.encode(encoding), protect=protect)
