"""Predictors for one model: the compiled library, and LightGBM's own as a fallback.

Libraries built by pyfuncs.library export blink's entry points: a row is plain doubles with
NaN for missing, given native (``blink_predict_rows``) or big endian as stored
(``blink_predict_be``), one call per row or per batch. Libraries vetted before those
existed export only TL2cgen's ``predict(union Entry*, int pred_margin, double* out)``, which
this module still drives, with two TL2cgen 1.0 facts:

* ``predict`` *adds* into ``out``, so ``out`` is zeroed before every call;
* an Entry is "missing" when its low 4 bytes are 0xFFFFFFFF, which a real double can also
  have. Rows holding such a value are scored by LightGBM instead, exactly.
"""

from __future__ import annotations

import ctypes
import os

from pyfuncs._typing import Any, Callable, Sequence
from pyfuncs.errors import ArtifactIntegrityError
from pyfuncs.integrity import verify_artifact

SMALL_BATCH = 8  # rows; predict_batch scores smaller batches with the per-row ctypes loop


class Entry(ctypes.Union):
    _fields_ = [("missing", ctypes.c_int), ("fvalue", ctypes.c_double), ("qvalue", ctypes.c_int)]


class CompiledPredictor:
    """The compiled library of one model, loaded from its bytes (hash verified first)."""

    def __init__(self, library: bytes, expected_sha256: str, num_features: int) -> None:
        """Load ``library`` (its bytes) after checking them against ``expected_sha256``."""
        verify_artifact(library, expected_sha256, "compiled library")
        lib, path = _load_library(library)
        self._setup(lib, path, num_features, owns_file=True)

    @classmethod
    def from_file(cls, path: str, num_features: int) -> CompiledPredictor:
        """Load a library file already checked when it was written (pyfuncs.library_files)."""
        predictor = cls.__new__(cls)
        predictor._setup(ctypes.CDLL(path), path, num_features, owns_file=False)
        return predictor

    def _setup(self, lib: ctypes.CDLL, path: str, num_features: int, *,
               owns_file: bool) -> None:
        self.library_path = path
        self._owns_file = owns_file  # a memory file or private copy, released by close()
        self._lib: ctypes.CDLL | None = lib
        expected = int(lib.get_num_feature())
        if expected != num_features:
            self._lib = None
            raise ArtifactIntegrityError(
                f"compiled library expects {expected} features, the model row lists {num_features}"
            )
        lib.predict.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        lib.predict.restype = None
        self._predict: Any = lib.predict
        self.num_features = num_features
        self._row = (Entry * num_features)()
        # Two views of the row's memory: doubles to write values, and 32-bit ints whose even
        # slots alias each Entry's "missing" field (offset 0). Plain arrays index faster
        # than Entry objects, and this is the per-call hot path.
        self._values = (ctypes.c_double * num_features).from_buffer(self._row)
        self._words = (ctypes.c_int32 * (2 * num_features)).from_buffer(self._row)
        self._out = (ctypes.c_double * 1)()
        row_at, out_at = ctypes.addressof(self._row), ctypes.addressof(self._out)
        predict = lib.predict
        self._call: Any = lambda: predict(row_at, 0, out_at)
        self._runtime: Any = None  # tl2cgen's batch predictor, built on first predict_batch
        # blink's own entry points (pyfuncs.library); None for a library built before them.
        self._rows: Any = None
        self._be: Any = None
        self._matrix_rows: Any = None
        self._shap: Any = None  # blink_shap (exact TreeSHAP), when the library has it
        if hasattr(lib, "blink_shap"):
            lib.blink_shap.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
            lib.blink_shap.restype = ctypes.c_int32
            self._shap = lib.blink_shap
        if hasattr(lib, "blink_abi_version"):
            lib.blink_predict_rows.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
            lib.blink_predict_rows.restype = None
            lib.blink_predict_be.argtypes = [ctypes.c_char_p]
            lib.blink_predict_be.restype = ctypes.c_double
            rows = lib.blink_predict_rows
            self._rows = lambda: rows(row_at, 1, out_at)
            self._be = lib.blink_predict_be
            self._matrix_rows = rows

    def close(self) -> None:
        """Unload the library and release its memory file (the model left the cache).

        TL2cgen's runtime holds its own dlopen of the same path: it is freed first, so our
        dlclose drops the last reference, the mapping goes, and the descriptor can be closed
        (its number may then serve another model's fresh dlopen safely).
        """
        if self._lib is None:
            return
        if self._runtime is not None:
            from tl2cgen.libloader import _LIB, _check_call

            _check_call(_LIB.TL2cgenPredictorFree(self._runtime.handle))
            self._runtime.handle = None
            self._runtime = None
        import _ctypes

        self._call = self._predict = self._rows = self._be = None
        self._matrix_rows = self._shap = None
        _ctypes.dlclose(self._lib._handle)
        self._lib = None
        if not self._owns_file:  # a shared library file: other sessions load it too
            return
        if self.library_path.startswith("/proc/self/fd/"):
            os.close(int(self.library_path.rsplit("/", 1)[1]))
        else:
            os.unlink(self.library_path)
            os.rmdir(os.path.dirname(self.library_path))

    @property
    def stored_scorer(self) -> Callable[[bytes], float] | None:
        """The library's scorer of one stored vector (big-endian float8s, NaN missing; the
        caller checks its length), called as is: no Python frame between a score and the
        trees. None for a library built before blink's entry points."""
        return self._be  # type: ignore[no-any-return]

    @property
    def has_shap(self) -> bool:
        return self._shap is not None

    def contributions(self, matrix: Any) -> Any:
        """Exact TreeSHAP values, as LightGBM's pred_contrib: (n, features + 1), base last."""
        import numpy as np

        data = np.ascontiguousarray(matrix, dtype=np.float64).reshape(-1, self.num_features)
        out = np.empty((len(data), self.num_features + 1))
        status = self._shap(data.ctypes.data, len(data), out.ctypes.data)
        if status != 0:
            raise MemoryError(f"blink_shap failed (status {status})")
        return out

    def predict_row(self, values: Sequence[float]) -> float | None:
        """Probability for one row, or None when the row hits TL2cgen's missing-value bug."""
        if self._rows is not None:
            self._values[:] = values  # type: ignore[call-overload]
            self._rows()
            return self._out[0]
        cells, words = self._values, self._words
        for i, value in enumerate(values):
            if value != value:  # NaN: missing
                words[2 * i] = -1
            else:
                cells[i] = value
                if words[2 * i] == -1:
                    return None
        out = self._out
        out[0] = 0.0  # predict() adds into out
        self._call()
        return out[0]

    def predict_matrix(self, matrix: Any) -> tuple[Any, Any]:
        """Probabilities for a float64 matrix; returns (probabilities, rows hitting the bug)."""
        import numpy as np

        if self._matrix_rows is not None:
            data = np.ascontiguousarray(matrix, dtype=np.float64).reshape(-1, self.num_features)
            out = np.empty(len(data))
            self._matrix_rows(data.ctypes.data, len(data), out.ctypes.data)
            return out, np.zeros(len(data), dtype=bool)
        data = np.array(matrix, dtype=np.float64, order="C", copy=True)
        bits = data.view(np.int64)
        nan = np.isnan(data)
        buggy = (((bits & 0xFFFFFFFF) == 0xFFFFFFFF) & ~nan).any(axis=1)
        bits[nan] = -1
        out = np.zeros(len(data))
        row_bytes = data.strides[0]
        base, out_base = data.ctypes.data, out.ctypes.data
        predict = self._predict
        for i in range(len(data)):
            predict(base + i * row_bytes, 0, out_base + i * 8)
        return out, buggy

    def predict_batch(self, matrix: Any) -> tuple[Any, Any]:
        """Like ``predict_matrix``, but the whole matrix goes to native code in one call.

        TL2cgen's runtime (one thread) loops over the rows in C; no Python work per row.
        Returns (probabilities, rows hitting the missing-value bug), as predict_matrix.
        """
        import numpy as np

        data = np.ascontiguousarray(matrix, dtype=np.float64).reshape(-1, self.num_features)
        # blink's entry point, or a few direct calls: both cheaper than building a DMatrix
        if len(data) <= SMALL_BATCH or self._matrix_rows is not None:
            return self.predict_matrix(data)
        import tl2cgen
        nan = np.isnan(data)
        buggy = (((data.view(np.int64) & 0xFFFFFFFF) == 0xFFFFFFFF) & ~nan).any(axis=1)
        if self._runtime is None:
            self._runtime = _runtime_predictor(self.library_path)
        dmat = tl2cgen.DMatrix(data, dtype="float64", missing=np.nan)
        out = np.asarray(self._runtime.predict(dmat), dtype=np.float64).reshape(len(data))
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

    def contributions(self, matrix: Any) -> Any:
        """Exact TreeSHAP values, one thread: (n, features + 1), the last column the base value."""
        import numpy as np

        data = np.asarray(matrix, dtype=np.float64).reshape(-1, self.num_features)
        return self._booster.predict(data, pred_contrib=True, num_threads=1)

    def raw_margin(self, matrix: Any) -> Any:
        """The model's raw score (log-odds) before the sigmoid."""
        import numpy as np

        data = np.asarray(matrix, dtype=np.float64).reshape(-1, self.num_features)
        return self._booster.predict(data, raw_score=True, num_threads=1)


def _load_library(library: bytes) -> tuple[ctypes.CDLL, str]:
    """dlopen the bytes; returns the handle and a path that reopens the same library.

    The library lives in an anonymous memory file (memfd) whose descriptor stays open while
    the model is loaded: nothing is left on disk, and TL2cgen's batch runtime can dlopen the
    same path (glibc hands back the already loaded library). ``CompiledPredictor.close``
    unloads it and closes the descriptor. Where memfd is unavailable or not executable, the
    file goes to a private 0700 directory, removed by ``close``.
    """
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("blink-model")
        try:
            with open(fd, "wb", closefd=False) as handle:
                handle.write(library)
            path = f"/proc/self/fd/{fd}"
            return ctypes.CDLL(path), path
        except OSError:
            os.close(fd)
    import tempfile  # only here: it costs ~8 ms of a session's first call to import

    directory = tempfile.mkdtemp(prefix="blink-model-")  # mode 0700
    path = os.path.join(directory, "model.so")
    with open(path, "wb") as handle:
        handle.write(library)
    try:
        return ctypes.CDLL(path), path
    except OSError:
        # Not loadable here (another architecture or libc): leave nothing behind.
        os.unlink(path)
        os.rmdir(directory)
        raise


def _runtime_predictor(path: str) -> Any:
    """tl2cgen.Predictor on ``path`` with one thread.

    ``tl2cgen.Predictor()`` resolves symlinks, which turns /proc/self/fd/N into a name that
    does not exist, so we call the same C entry point it calls, with the path as is.
    """
    import tl2cgen
    from tl2cgen.libloader import _LIB, _check_call
    from tl2cgen.util import c_str

    predictor = tl2cgen.Predictor.__new__(tl2cgen.Predictor)
    predictor.handle = ctypes.c_void_p()
    _check_call(_LIB.TL2cgenPredictorLoad(c_str(path), ctypes.c_int(1),
                                          ctypes.byref(predictor.handle)))
    predictor._load_metadata(predictor.handle)
    return predictor
