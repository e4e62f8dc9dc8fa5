"""The model-directory container: a fitted model as a directory of plain bytes plus ``manifest.json``.

:func:`write_model_dir` / :func:`read_model_dir` store a model as files plus a ``manifest.json`` with a format
name, a format version and the sha256 of every file. The directory is swapped in whole; reading checks format,
version and every hash before handing out a single byte. Nothing here unpickles anything.
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import hmac
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from uplift._files import TMP_MARK, PathLike, fsync_dir, remove_stale_temps, temp_prefix, track_temp, umask
from uplift._versions import __version__
from uplift.errors import UpliftInputError

#: Value of ``manifest.json["format"]`` in every model directory this package writes.
MODEL_FORMAT = "uplift-study"
#: Bump when a saved model can no longer be read by older code; readers refuse anything newer.
#: 2: the manifest carries its own ``self_sha256``, the linear final stage is JSON (version 1 pickled it).
MODEL_FORMAT_VERSION = 2
MANIFEST = "manifest.json"
#: The HMAC-SHA256 of the digest, next to the manifest (not listed in it: it signs the manifest).
SIGNATURE = "manifest.sig"
#: Environment variable holding the signing key: set at save time, a signature is written; at load time,
#: it is verified.
KEY_ENV = "UPLIFT_MODEL_KEY"
#: Keys of ``manifest.json`` that :func:`write_model_dir` owns (or :func:`read_model_dir` adds to what it
#: returns: ``digest`` and ``signature``); callers may not set them.
RESERVED_KEYS = ("format", "format_version", "sha256", "uplift_version", "self_sha256", "digest", "signature")
#: Files an operating system drops into any folder it displays. They are never read, so ignoring them
#: costs no safety, and refusing them would break a model directory merely opened in Finder/Explorer.
OS_CLUTTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directory entries (Linux renameat2); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0  # EINVAL/ENOSYS (file system or kernel without exchange): use the two-rename fallback


def _check_name(name: object, where: str) -> str:
    bad = (not isinstance(name, str) or not name or name.startswith("/") or "\\" in name or "\x00" in name
           or any(part in ("", ".", "..") or part.startswith(".") for part in name.split("/"))
           or name in (MANIFEST, SIGNATURE) or re.match(r"^[A-Za-z]:", name) is not None)
    if bad:
        raise UpliftInputError(f"{where}: invalid model file name {name!r}; use relative names like "
                               "'fold0/model.txt' without '..', leading dots or backslashes")
    return name


def _chunks(data: bytes | tuple) -> tuple:
    return data if isinstance(data, tuple) else (data,)


def _sha256(data: bytes | tuple) -> str:
    h = hashlib.sha256()
    for chunk in _chunks(data):
        h.update(chunk)
    return h.hexdigest()


def _self_sha256(manifest: Mapping) -> str:
    """sha256 of the manifest's canonical JSON without its ``self_sha256``: catches a hand edit that did not
    recompute it (not an attacker, who can recompute it; a pinned digest or a signature stops them)."""
    rest = {k: v for k, v in manifest.items() if k != "self_sha256"}
    return _sha256(json.dumps(rest, sort_keys=True, separators=(",", ":"), allow_nan=False).encode())


def signing_key() -> bytes | None:
    """The signing key from :data:`KEY_ENV` (None when unset or empty)."""
    key = os.environ.get(KEY_ENV, "")
    return key.encode() if key else None


def sign_digest(digest: str, key: bytes) -> str:
    """HMAC-SHA256 of a model digest under ``key``, as 64 hex digits.

    Examples
    --------
    >>> sign_digest("0" * 64, b"secret")[:16]
    '8126eaffc3c768ae'
    """
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def model_digest(directory: PathLike) -> str:
    """The model's identity: the sha256 of its ``manifest.json`` bytes, which list every other file's sha256.

    Pin it (``uplift predict --expect-digest``, ``Study.load(path, expect_digest=...)``) to load only the
    model that was approved. This reads the manifest only; loading verifies the rest.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> digest = write_model_dir(d, {"a.json": b"{}"}, {})
    >>> model_digest(d) == digest, len(digest)
    (True, 64)
    """
    path = Path(directory) / MANIFEST
    if path.is_symlink() or not path.is_file():
        raise UpliftInputError(f"{directory} is not an uplift model directory (no {MANIFEST}); give the "
                               "directory written by `uplift fit`")
    return _sha256(path.read_bytes())


def _check_digest(expected: str, digest: str, directory: Path) -> None:
    if not isinstance(expected, str) or re.fullmatch(r"[0-9a-fA-F]{64}", expected.strip()) is None:
        raise UpliftInputError(f"expected digest {expected!r} is not 64 hex digits; copy it from `uplift fit` or "
                               "`uplift evaluate`")
    if not hmac.compare_digest(expected.strip().lower(), digest):
        raise UpliftInputError(f"model {directory} has digest {digest}, not the expected {expected.strip().lower()}; "
                               "it changed since it was approved - refusing to load it")


def _check_signature(directory: Path, digest: str, require: bool) -> str:
    """Verify the signature when a key is set; returns "verified", "unsigned" or "not verified (no key)"."""
    path = directory / SIGNATURE
    if path.is_symlink():
        raise UpliftInputError(f"{directory} contains a symbolic link {SIGNATURE}; model directories may hold "
                               "only plain files")
    present = path.is_file()
    key = signing_key()
    if require and key is None:
        raise UpliftInputError(f"a signed model is required but {KEY_ENV} is not set, so {directory} cannot be "
                               f"verified; set {KEY_ENV} to the signing key")
    if require and not present:
        raise UpliftInputError(f"model {directory} is not signed and a signature is required; fit it again with "
                               f"{KEY_ENV} set")
    if not present:
        return "unsigned"
    if key is None:
        return f"signed, not verified ({KEY_ENV} not set)"
    found = path.read_bytes().strip()
    if not hmac.compare_digest(found, sign_digest(digest, key).encode()):
        raise UpliftInputError(f"the signature of model {directory} does not match: it was changed after signing, "
                               f"or signed with another key - refusing to load it")
    return "verified"


def _is_model_dir(directory: Path) -> bool:
    if not any(directory.iterdir()):
        return True  # an empty directory holds nothing to lose
    try:
        manifest = json.loads((directory / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == MODEL_FORMAT


def check_model_dir_target(directory: PathLike) -> None:
    """Fail (before any work) when ``directory`` cannot become a model directory: a symbolic link, a file, an
    existing directory that is not a model directory (never replaced), or a missing parent."""
    directory = Path(directory)
    if directory.is_symlink():
        raise UpliftInputError(f"{directory} is a symbolic link; save the model to a real directory")
    if directory.exists():
        if not directory.is_dir():
            raise UpliftInputError(f"cannot save the model to {directory}: it is a file; choose a new path")
        if not _is_model_dir(directory):
            raise UpliftInputError(f"{directory} exists and is not an uplift model directory; refusing to "
                                   "replace it - choose a new path or remove it yourself")
    elif not directory.parent.is_dir():
        raise UpliftInputError(f"cannot save the model to {directory}: directory {directory.parent} does not "
                               "exist; create it first")


def write_model_dir(directory: PathLike, files: Mapping[str, bytes], manifest: Mapping[str, object]) -> str:
    """Write a model directory in one step: every file, plus ``manifest.json`` with their sha256.

    The files are written into a hidden sibling ``.<name>.uplift-tmp-<pid>-<random>``, fsynced, and swapped in for
    ``directory`` by rename (on Linux one atomic exchange; elsewhere the old directory is first renamed
    aside, so at any instant ``directory`` is the old model, the new one, or absent with the old model
    kept as ``.<name>.uplift-tmp-*``). The old directory is deleted only once the new one is in place. An
    existing ``directory`` that is not a model directory written by this function is never replaced.

    Parameters
    ----------
    directory : str or path-like
        Model directory to create or replace; its parent must exist.
    files : mapping of str to bytes
        Relative POSIX file names (``"fold0/mu0.txt"``) to their content: bytes, or a tuple of bytes-like
        chunks written one after the other (e.g. a header and a memoryview of a large array, never copied).
    manifest : mapping
        JSON-serialisable fields stored in ``manifest.json`` next to ``format``, ``format_version``,
        ``uplift_version``, ``sha256`` and ``self_sha256`` (which are set here and may not be passed).

    Returns
    -------
    str
        The model's digest (:func:`model_digest`). With :data:`KEY_ENV` set, :data:`SIGNATURE` holds its
        HMAC-SHA256 under that key.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> digest = write_model_dir(d, {"weights/a.txt": b"0.5"}, {"learner": "t"})
    >>> manifest, files = read_model_dir(d)
    >>> manifest["learner"], files
    ('t', {'weights/a.txt': b'0.5'})
    """
    directory = Path(directory)
    where = f"saving model to {directory}"
    clash = [k for k in manifest if k in RESERVED_KEYS]
    if clash:
        raise UpliftInputError(f"{where}: manifest field {clash[0]!r} is set by write_model_dir; rename it")
    for name, data in files.items():
        _check_name(name, where)
        if not (isinstance(data, bytes) or (isinstance(data, tuple) and all(isinstance(c, bytes | memoryview)
                                                                             for c in data))):
            raise TypeError(f"{where}: content of {name!r} must be bytes (or a tuple of bytes-like chunks), got "
                            f"{type(data).__name__}")
    names = sorted(files)
    # Names that differ only in case collide on macOS/Windows; a file cannot also be a folder.
    seen: dict[str, str] = {}
    folders = {n.lower().rsplit("/", k)[0] for n in names for k in range(1, n.count("/") + 1)}
    for name in names:
        key = name.lower()
        if key in seen or key in folders:
            raise UpliftInputError(f"{where}: model file name {name!r} collides with another file or "
                                   "folder name (ignoring case); rename one")
        seen[key] = name
    full = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
            "uplift_version": __version__, **manifest,
            "sha256": {n: _sha256(files[n]) for n in names}}
    try:
        full["self_sha256"] = _self_sha256(full)
        manifest_bytes = (json.dumps(full, sort_keys=True, indent=1, allow_nan=False) + "\n").encode()
    except (TypeError, ValueError) as err:
        raise UpliftInputError(f"{where}: the manifest is not plain JSON ({err})") from None
    digest = _sha256(manifest_bytes)
    key = signing_key()
    extra = {} if key is None else {SIGNATURE: (sign_digest(digest, key) + "\n").encode()}

    check_model_dir_target(directory)
    parent = directory.parent
    try:
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(directory), dir=parent))
    except OSError as err:
        raise UpliftInputError(f"cannot save the model: directory {parent} is not writable ({err.strerror}); "
                               "choose another location") from None
    track_temp(tmp, True)
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it 0700; a model dir is as shareable as any dir
        content = {**files, **extra, MANIFEST: manifest_bytes}
        for name in [*names, *extra, MANIFEST]:  # the manifest last: a directory with one is complete
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as fh:
                for chunk in _chunks(content[name]):
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        for sub in sorted({(tmp / n).parent for n in names}, key=lambda p: -len(p.parts)):
            fsync_dir(sub)
        fsync_dir(tmp)
        if not directory.exists():
            os.rename(tmp, directory)
            old = None
        elif _exchange(tmp, directory):
            old = tmp  # the swap left the previous model under the temp name
        else:
            old = tmp.with_name(tmp.name + "-old")  # unique because tmp's name is
            os.rename(directory, old)
            try:
                os.rename(tmp, directory)
            except OSError:
                os.rename(old, directory)
                raise
        fsync_dir(parent)
    except BaseException:
        if tmp.exists():  # the unfinished new model, or after a swap the old one: neither is needed
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        track_temp(tmp, False)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    remove_stale_temps(directory)  # what interrupted saves of this directory left
    return digest


def _leftovers(directory: Path) -> str:
    if not directory.parent.is_dir():
        return ""
    name = glob.escape(directory.name)  # temp names of this version, and of earlier ones (".*.tmp")
    found = sorted([*directory.parent.glob(f".{name}{TMP_MARK}*"), *directory.parent.glob(f".{name}.*.tmp")])
    if not found:
        return ""
    return f" (an interrupted save left {found[0].name} next to it; it may hold a previous model)"


class VerifiedFiles(Mapping):
    """The listed files of a model directory, each read and checked against its manifest sha256 on first access.

    :func:`read_model_dir` has already verified the manifest (digest, signature, format, ``self_sha256``), that
    the directory holds exactly the listed files, and every file's sha256. A file's bytes are read when first
    asked for and handed out only after they match their listed hash again (so a change in between is caught
    too): a caller that needs a few files (``uplift predict`` needs no out-of-fold arrays) never holds or
    parses the rest. ``pop`` hands a file out and forgets it (large arrays are not kept twice).
    """

    def __init__(self, directory: Path, hashes: Mapping[str, str]) -> None:
        self._dir, self._hashes, self._read = directory, dict(hashes), {}

    def __getitem__(self, name: str) -> bytes:
        if name not in self._hashes:
            raise KeyError(name)
        if name not in self._read:
            data = (self._dir / name).read_bytes()
            if _sha256(data) != self._hashes[name]:
                raise UpliftInputError(f"model file {name!r} in {self._dir} does not match its sha256 in "
                                       f"{MANIFEST}: it was edited or corrupted - save the model again")
            self._read[name] = data
        return self._read[name]

    def __iter__(self):
        return iter(sorted(self._hashes))

    def __len__(self) -> int:
        return len(self._hashes)

    def __repr__(self) -> str:
        return f"VerifiedFiles({self._dir}, {len(self)} files, {len(self._read)} read)"

    def pop(self, name: str) -> bytes:
        data = self[name]
        del self._read[name], self._hashes[name]
        return data


def read_model_dir(directory: PathLike, *, expect_digest: str | None = None, require_signature: bool = False,
                   lazy: bool = False) -> tuple[dict, dict[str, bytes] | VerifiedFiles]:
    """Read a directory written by :func:`write_model_dir`, verifying it completely first.

    Checks, in order: ``manifest.json`` exists; its digest is ``expect_digest`` (if given); its signature
    verifies (when :data:`KEY_ENV` is set and a signature exists, or when ``require_signature``); it is
    JSON; ``format`` is ``"uplift-study"``; ``format_version`` is one this code reads (a newer one names
    the uplift version that wrote it); its ``self_sha256`` matches its content; the files on disk are
    exactly those listed (no extra, none missing, no symbolic links); every sha256 matches. Only then are
    any bytes returned. Nothing is unpickled.

    Returns
    -------
    manifest : dict
        The whole manifest, including ``format``, ``format_version``, ``uplift_version`` and ``sha256``,
        plus two fields added on reading: ``digest`` (:func:`model_digest`) and ``signature``
        (``"verified"``, ``"unsigned"`` or ``"signed, not verified (UPLIFT_MODEL_KEY not set)"``).
    files : dict or VerifiedFiles
        Every listed file's content, keyed by its relative POSIX name (a read-only mapping). Every sha256 is
        checked here, before anything is returned; by default every file's bytes are kept from that read. With
        ``lazy`` the hashes are checked streaming (nothing is kept) and a file is read again, and checked again,
        only when it is looked up: the memory and parsing of files a caller never asks for are saved.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> _ = write_model_dir(d, {"a.json": b"{}"}, {})
    >>> (d / "a.json").write_bytes(b"[]")
    2
    >>> read_model_dir(d)
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: model file 'a.json' in ... does not match its sha256 ...
    """
    directory = Path(directory)
    if not directory.exists():
        raise UpliftInputError(f"model directory {directory} does not exist{_leftovers(directory)}; check "
                               "the path")
    if not directory.is_dir():
        raise UpliftInputError(f"{directory} is a file, not a model directory; give the directory "
                               "written by `uplift fit`")
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file() or manifest_path.is_symlink():
        raise UpliftInputError(f"{directory} is not an uplift model directory (no {MANIFEST}); give the "
                               "directory written by `uplift fit`")
    raw = manifest_path.read_bytes()
    digest = _sha256(raw)
    if expect_digest is not None:
        _check_digest(expect_digest, digest, directory)
    signature = _check_signature(directory, digest, require_signature)
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise UpliftInputError(f"{manifest_path} is not valid JSON ({err}); the model directory is "
                               "damaged - save the model again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MODEL_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise UpliftInputError(f"{directory} holds format {found!r}, not {MODEL_FORMAT!r}; it was not "
                               "written by uplift - give a directory saved by `uplift fit`")
    version = manifest.get("format_version")
    ours = __version__
    if type(version) is not int or version < 1:
        raise UpliftInputError(f"{directory} has an unknown model format version {version!r}; it is damaged "
                               "or foreign - save the model again")
    if version > MODEL_FORMAT_VERSION:
        writer = manifest.get("uplift_version")
        plain = isinstance(writer, str) and re.fullmatch(r"[\w.+-]+", writer)
        need = f"uplift>={writer}" if plain else "uplift"
        raise UpliftInputError(f"{directory} uses model format version {version}, written by uplift "
                               f"{writer or '(unknown)'}; this uplift {ours} reads format version "
                               f"{MODEL_FORMAT_VERSION} or older - upgrade with `pip install -U '{need}'`")
    if version >= 2:
        try:
            intact = manifest.get("self_sha256") == _self_sha256(manifest)
        except ValueError:  # NaN or Infinity written into the manifest by hand
            intact = False
        if not intact:
            raise UpliftInputError(f"{manifest_path} was edited after it was written (its self_sha256 does not "
                                   "match its content, e.g. the feature schema or categories); save the model "
                                   "again")
    hashes = manifest.get("sha256")
    if not isinstance(hashes, dict) or not all(
            isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes.values()):
        raise UpliftInputError(f"{manifest_path} has no valid sha256 list; the model directory is damaged - "
                               "save the model again")
    where = f"reading model {directory}"
    for name in hashes:
        _check_name(name, where)

    on_disk: set[str] = set()
    for root, dirs, names in os.walk(directory, followlinks=False):
        for entry in [*dirs, *names]:
            full = Path(root, entry)
            if full.is_symlink():
                raise UpliftInputError(f"{directory} contains a symbolic link {full.relative_to(directory)}; "
                                       "model directories may hold only plain files")
        on_disk.update(Path(root, n).relative_to(directory).as_posix() for n in names if n not in OS_CLUTTER)
    on_disk.discard(MANIFEST)
    on_disk.discard(SIGNATURE)
    extra = sorted(on_disk - set(hashes))
    if extra:
        raise UpliftInputError(f"{directory} contains {extra[0]!r}, which its manifest does not list; "
                               "remove it or save the model again")
    missing = sorted(set(hashes) - on_disk)
    if missing:
        raise UpliftInputError(f"{directory} is missing {missing[0]!r}, which its manifest lists; the model "
                               "is incomplete - save it again")

    files = VerifiedFiles(directory, hashes)
    for name in files:
        if not lazy:
            files[name]  # noqa: B018  (reads, verifies and keeps it now)
            continue
        with open(directory / name, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != hashes[name]:
                raise UpliftInputError(f"model file {name!r} in {directory} does not match its sha256 in "
                                       f"{MANIFEST}: it was edited or corrupted - save the model again")
    # Read whole (the default): a plain dict of the verified bytes, which callers may edit and write again.
    return {**manifest, "digest": digest, "signature": signature}, files if lazy else dict(files)
