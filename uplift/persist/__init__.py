"""Model directories: a fitted study saved as verified plain files, and loaded back without running code.

:mod:`uplift.persist.container` writes and reads the directory (every file's sha256 in ``manifest.json``,
whose own sha256 is the model's digest, optionally signed with ``UPLIFT_MODEL_KEY``; swapped in whole);
:mod:`uplift.persist.store` turns a :class:`~uplift.fit.result.FitResult` into those files and back.
See docs/security.md for what the digest, the signature and ``trust`` each protect against.
"""

from uplift.persist.container import (
    KEY_ENV,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    SIGNATURE,
    check_model_dir_target,
    model_digest,
    read_model_dir,
    write_model_dir,
)
from uplift.persist.store import load_result, save_result

__all__ = ["KEY_ENV", "MODEL_FORMAT", "MODEL_FORMAT_VERSION", "SIGNATURE", "check_model_dir_target", "load_result",
           "model_digest", "read_model_dir", "save_result", "write_model_dir"]
