"""Predictors for one model: the TL2cgen-compiled library, and LightGBM's own as a fallback.

The compiled library exports ``predict(union Entry*, int pred_margin, double* out)``; we call
it directly through ctypes, one thread, no DMatrix. Two TL2cgen facts shape this module:

* ``predict`` *adds* into ``out``, so ``out`` is zeroed before every call;
* an Entry is "missing" when its low 4 bytes are 0xFFFFFFFF, which a real double can also
  have (TL2cgen 1.0 bug). Rows holding such a value are scored by LightGBM instead, exactly.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
from collections.abc import Sequence
from typing import Any

from pyfuncs.errors import ArtifactIntegrityError


class Entry(ctypes.Union):
    _fields_ = [("missing", ctypes.c_int), ("fvalue", ctypes.c_double), ("qvalue", ctypes.c_int)]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_artifact(data: bytes, expected_sha256: str, what: str) -> None:
    """Refuse an artifact whose bytes do not hash to the stored sha256."""
    actual = sha256_hex(data)
    if actual != expected_sha256.lower():
        raise ArtifactIntegrityError(
            f"{what}: sha256 mismatch (stored {expected_sha256}, computed {actual}); "
            "the artifact was not loaded"
        )


class CompiledPredictor:
    """The compiled library of one model, loaded from its bytes (hash verified first)."""

    def __init__(self, library: bytes, expected_sha256: str, num_features: int) -> None:
        verify_artifact(library, expected_sha256, "compiled library")
        self._lib = _load_library(library)
        expected = int(self._lib.get_num_feature())
        if expected != num_features:
            raise ArtifactIntegrityError(
                f"compiled library expects {expected} features, the model row lists {num_features}"
            )
        self._lib.predict.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self._lib.predict.restype = None
        self.num_features = num_features
        self._row = (Entry * num_features)()
        self._out = (ctypes.c_double * 1)()

    def predict_row(self, values: Sequence[float]) -> float | None:
        """Probability for one row, or None when the row hits TL2cgen's missing-value bug."""
        row = self._row
        for i, value in enumerate(values):
            if value != value:  # NaN: missing
                row[i].missing = -1
            else:
                row[i].fvalue = value
                if row[i].missing == -1:
                    return None
        self._out[0] = 0.0
        self._lib.predict(ctypes.addressof(row), 0, ctypes.addressof(self._out))
        return float(self._out[0])

    def predict_matrix(self, matrix: Any) -> tuple[Any, Any]:
        """Probabilities for a float64 matrix; returns (probabilities, rows hitting the bug)."""
        import numpy as np

        data = np.array(matrix, dtype=np.float64, order="C", copy=True)
        bits = data.view(np.int64)
        nan = np.isnan(data)
        buggy = (((bits & 0xFFFFFFFF) == 0xFFFFFFFF) & ~nan).any(axis=1)
        bits[nan] = -1
        out = np.zeros(len(data))
        row_bytes = data.strides[0]
        base, out_base = data.ctypes.data, out.ctypes.data
        predict = self._lib.predict
        for i in range(len(data)):
            predict(base + i * row_bytes, 0, out_base + i * 8)
        return out, buggy


class BoosterPredictor:
    """LightGBM's own predictor from the model text: slower, runs anywhere LightGBM does."""

    def __init__(self, model_text: str) -> None:
        import lightgbm

        self._booster = lightgbm.Booster(model_str=model_text)
        self.num_features = self._booster.num_feature()

    def predict_matrix(self, matrix: Any) -> Any:
        import numpy as np

        data = np.asarray(matrix, dtype=np.float64).reshape(-1, self.num_features)
        return self._booster.predict(data, num_threads=1)

    def predict_row(self, values: Sequence[float]) -> float:
        return float(self.predict_matrix([list(values)])[0])


def _load_library(library: bytes) -> ctypes.CDLL:
    """dlopen the bytes from a private file, then unlink it (the mapping outlives the file)."""
    directory = tempfile.mkdtemp(prefix="blink-model-")
    path = os.path.join(directory, "model.so")
    try:
        with open(path, "wb") as handle:
            handle.write(library)
        return ctypes.CDLL(path)
    finally:
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(directory)
