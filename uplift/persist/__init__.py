"""Model directories: a fitted study saved as verified plain files, and loaded back without running code.

:mod:`uplift.persist.container` writes and reads the directory (every file's sha256 in ``manifest.json``,
swapped in whole); :mod:`uplift.persist.store` turns a :class:`~uplift.fit.result.FitResult` into
those files and back.
"""

from uplift.persist.container import MODEL_FORMAT, MODEL_FORMAT_VERSION, read_model_dir, write_model_dir
from uplift.persist.store import load_result, save_result

__all__ = ["MODEL_FORMAT", "MODEL_FORMAT_VERSION", "load_result", "read_model_dir", "save_result",
           "write_model_dir"]
