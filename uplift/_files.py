"""Atomic writes: every output of the toolkit replaces its target whole, never an input of the same command.

A hidden temp file ``.<name>.uplift-tmp-<pid>-<random>`` in the target's directory is written, fsynced and
``os.replace``-d onto the target, so a crash leaves the old file or the new one, never half of one. The next
successful write of the same output removes temp files that such a crash left (those of processes that no
longer run); temp files of this process are removed at exit, and the CLI turns SIGTERM/SIGHUP into a normal
exit so they are removed then too. :func:`check_output_path` fails before any work when the output resolves
(through symbolic links, ``..``, hard links or a case-insensitive file system) to an input file or into an
input directory, is a directory, or lies in a directory that does not exist or cannot be written.
:func:`plain_json` is the one JSON encoder of every ``--json`` document and JSON output file.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime
import glob
import json
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from uplift.errors import UpliftInputError

PathLike = str | os.PathLike

#: Marks every temp file or folder this package writes next to an output, followed by ``<pid>-<random>``.
TMP_MARK = ".uplift-tmp-"
#: A temp file older than this is stale even if its process id is in use again (or on another machine).
STALE_AFTER_S = 24 * 3600
_ACTIVE: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


def temp_prefix(path: Path) -> str:
    """Name prefix of this process's temp files for output ``path``: ``.<name>.uplift-tmp-<pid>-``."""
    return f".{path.name}{TMP_MARK}{os.getpid()}-"


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap liveness test: only the age rule applies
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temps(path: PathLike) -> list[Path]:
    """Remove the temp files (or folders) that interrupted writes of ``path`` left; return what was removed.

    A temp is stale when its process no longer runs, or it is this process's but no write of it is under way,
    or it is older than :data:`STALE_AFTER_S`. Temps of writers still running are left alone, so concurrent
    writers of one output never delete each other's work.
    """
    path = Path(path)
    removed = []
    pattern = re.compile(rf"^\.{re.escape(path.name)}{re.escape(TMP_MARK)}(\d+)-")
    with contextlib.suppress(OSError):
        for tmp in path.parent.glob(f".{glob.escape(path.name)}{TMP_MARK}*"):
            m = pattern.match(tmp.name)
            if m is None:
                continue
            pid = int(m.group(1))
            with _ACTIVE_LOCK:
                active = str(tmp) in _ACTIVE
            try:
                old = time.time() - tmp.lstat().st_mtime > STALE_AFTER_S
            except OSError:
                continue
            if active or not (old or pid == os.getpid() or not _alive(pid)):
                continue
            with contextlib.suppress(OSError):
                if tmp.is_dir() and not tmp.is_symlink():
                    shutil.rmtree(tmp)
                else:
                    tmp.unlink()
                removed.append(tmp)
    return removed


def track_temp(tmp: PathLike, active: bool) -> None:
    """Register (or forget) a temp file or folder of this process, removed at exit if still there."""
    with _ACTIVE_LOCK:
        (_ACTIVE.add if active else _ACTIVE.discard)(str(tmp))


@atexit.register
def _remove_active_temps() -> None:
    with _ACTIVE_LOCK:
        left = list(_ACTIVE)
        _ACTIVE.clear()
    for name in left:
        with contextlib.suppress(OSError):
            if os.path.isdir(name) and not os.path.islink(name):
                shutil.rmtree(name)
            else:
                os.unlink(name)


def exit_on_termination() -> None:
    """Turn SIGTERM and SIGHUP into ``SystemExit`` (where their handler is the default), so that an interrupted
    write removes its temp file as on Ctrl-C. Called by the ``uplift`` command, not on import."""
    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None or threading.current_thread() is not threading.main_thread():
            continue
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _exit)


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


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))  # follows every symbolic link and folds "..", also for missing files


def _aliases(out: Path, inp: Path, out_is_dir: bool) -> str | None:
    """How output ``out`` would destroy input ``inp`` (None if it would not)."""
    o, i = _real(out), _real(inp)
    if o == i:
        return "is"
    with contextlib.suppress(OSError):
        if os.path.samefile(out, inp):  # hard links, case-insensitive file systems
            return "is"
    if i.is_dir() and i in o.parents:
        return "inside"
    if out_is_dir and o in i.parents:
        return "contains"
    with contextlib.suppress(OSError):  # a file inside an input directory through a hard-linked parent
        if i.is_dir() and any(os.path.samefile(parent, i) for parent in out.parents if parent.exists()):
            return "inside"
    return None


def _check_target(path: Path, protect: PathLike | Iterable[PathLike] | None, directory: bool = False) -> None:
    if protect is not None:
        guarded = [protect] if isinstance(protect, str | os.PathLike) else list(protect)
        for inp in guarded:
            if inp is None:
                continue
            how = _aliases(path, Path(inp), directory)
            if how == "is":
                raise UpliftInputError(f"refusing to overwrite the input file {inp} with output {path}; choose a "
                                       "different output path")
            if how == "inside":
                raise UpliftInputError(f"refusing to write {path}: it is inside {inp}, an input directory of this "
                                       "command; choose a different output path")
            if how == "contains":
                raise UpliftInputError(f"refusing to write {path}: the input file {inp} is inside it and would be "
                                       "replaced; choose a different output path")
    parent = path.parent
    if not parent.is_dir():
        raise UpliftInputError(f"cannot write {path.name}: directory {parent} does not exist; "
                               "create it first")
    if path.is_dir() and not directory:
        raise UpliftInputError(f"cannot write {path}: it is a directory; give a file name")
    if directory and path.exists() and not path.is_dir():
        raise UpliftInputError(f"cannot write the directory {path}: it is a file; choose a new path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UpliftInputError(f"cannot write {path.name}: directory {parent} is not writable; choose "
                               "another output directory")


def check_output_path(path: PathLike, protect: PathLike | Iterable[PathLike] | None = None, *,
                      directory: bool = False) -> None:
    """Fail early (before any work) when ``path`` cannot be written or would destroy an input of the command.

    Parameters
    ----------
    path : str or path-like
        The output. It may not resolve (after symbolic links and ``..``, or through a hard link) to an input,
        nor lie inside an input directory (a model directory); it may not be an existing directory unless
        ``directory`` (an output that is a directory by contract, like a model directory, which then may not
        contain an input); its folder must exist and be writable.
    protect : path-like or iterable of path-like, optional
        The command's inputs: files or directories (``None`` entries are skipped).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "in.csv").write_text("a\\n1\\n")
    4
    >>> check_output_path(d / "sub" / ".." / "in.csv", protect=[d / "in.csv"])
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: refusing to overwrite the input file ... choose a different output path
    """
    _check_target(Path(path), protect, directory)


@contextlib.contextmanager
def atomic_path(path: PathLike, protect: PathLike | Iterable[PathLike] | None = None) -> Iterator[Path]:
    """Yield the name of an empty temp file that replaces ``path`` once the block completes (fsynced first).

    For writers that need a file name rather than a file object (Parquet writers, ``to_csv`` in batches).
    On any error or interruption the temp file is removed and ``path`` is untouched; after success, stale
    temps of earlier interrupted writes of ``path`` are removed (:func:`remove_stale_temps`).
    """
    path = Path(path)
    _check_target(path, protect)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path), dir=path.parent)
    except OSError as err:
        raise UpliftInputError(f"cannot write {path.name}: directory {path.parent} is not writable "
                               f"({err.strerror}); choose another output directory") from None
    tmp = Path(tmp_name)
    track_temp(tmp, True)
    try:
        # mkstemp creates the file 0600; give the result the permissions a plain open() would have, or keep
        # those of the file being replaced.
        try:
            mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~umask()
            if os.chmod in os.supports_fd:
                os.chmod(fd, mode)
            else:
                os.chmod(tmp, mode)
        finally:
            os.close(fd)
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    finally:
        track_temp(tmp, False)
    fsync_dir(path.parent)
    remove_stale_temps(path)


@contextlib.contextmanager
def atomic_file(path: PathLike, protect: PathLike | Iterable[PathLike] | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only once it is completely written and fsynced."""
    with atomic_path(path, protect) as tmp, open(tmp, "wb") as fh:
        yield fh
        fh.flush()


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


def plain_json(obj):
    """``obj`` as plain JSON values: numpy scalars and arrays, pandas frames, series and timestamps, paths and
    dataclasses become Python values; NaN and infinities become ``None`` (JSON ``null``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> plain_json({"n": np.int64(3), "x": np.array([0.5, np.nan]), "t": pd.DataFrame({"a": [1.0, np.inf]})})
    {'n': 3, 'x': [0.5, None], 't': [{'a': 1.0}, {'a': None}]}
    """
    if isinstance(obj, pd.DataFrame):
        return [plain_json(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, pd.Series):
        return plain_json(obj.tolist() if isinstance(obj.index, pd.RangeIndex) else obj.to_dict())
    if isinstance(obj, pd.Index):
        return plain_json(obj.tolist())
    if isinstance(obj, Mapping):  # dicts and read-only records such as the design report
        return {str(k): plain_json(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return plain_json(obj.tolist())
    if isinstance(obj, list | tuple | set | frozenset):
        return [plain_json(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is pd.NaT or obj is pd.NA:
        return None
    if isinstance(obj, datetime.date | datetime.datetime | pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return plain_json(dataclasses.asdict(obj))
    return str(obj)


def json_text(doc, *, indent: int | None = 1) -> str:
    """``doc`` as one JSON document (through :func:`plain_json`; never NaN), ending in a newline.

    Examples
    --------
    >>> json_text({"qini": np.float32(0.25), "gap": float("nan")}, indent=None)
    '{"qini": 0.25, "gap": null}\\n'
    """
    return json.dumps(plain_json(doc), indent=indent, allow_nan=False) + "\n"
