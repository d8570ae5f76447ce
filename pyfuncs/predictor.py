"""Predictors for one model: the compiled library, and LightGBM's own as a fallback.

Libraries built by pyfuncs.library export blink's entry points: a row is plain doubles with
NaN for missing, given native (``blink_predict_rows``) or big endian as stored
(``blink_predict_be``), one call per row or per batch. They are also the Python extension
module ``blink_model``, loaded without ctypes: a session's single scores never import
ctypes (~8 ms of its first call in the server) nor pay a ctypes call (~1 µs). Batches and
TreeSHAP reach the same library through ctypes, loaded on first use beside numpy.

Libraries vetted before those existed export only TL2cgen's ``predict(union Entry*, int
pred_margin, double* out)``, which this module still drives through ctypes, with two
TL2cgen 1.0 facts:

* ``predict`` *adds* into ``out``, so ``out`` is zeroed before every call;
* an Entry is "missing" when its low 4 bytes are 0xFFFFFFFF, which a real double can also
  have. Rows holding such a value are scored by LightGBM instead, exactly.
"""

from __future__ import annotations

import os

from pyfuncs._typing import Any, Callable, Sequence
from pyfuncs.errors import ArtifactIntegrityError
from pyfuncs.integrity import verify_artifact

SMALL_BATCH = 8  # rows; predict_batch scores smaller batches with the per-row ctypes loop
MODULE_NAME = "blink_model"  # the library's Python module (pyfuncs/native/blink_entry.c)


class CompiledPredictor:
    """The compiled library of one model, loaded from its bytes (hash verified first)."""

    def __init__(self, library: bytes, expected_sha256: str, num_features: int) -> None:
        """Load ``library`` (its bytes) after checking them against ``expected_sha256``."""
        verify_artifact(library, expected_sha256, "compiled library")
        path = _write_library(library)
        try:
            self._setup(path, num_features, owns_file=True)
        except BaseException:
            _remove_file(path)
            raise

    @classmethod
    def from_file(cls, path: str, num_features: int) -> CompiledPredictor:
        """Load a library file already checked when it was written (pyfuncs.library_files)."""
        predictor = cls.__new__(cls)
        predictor._setup(path, num_features, owns_file=False)
        return predictor

    def _setup(self, path: str, num_features: int, *, owns_file: bool) -> None:
        """Load the library at ``path``: as the module when it is one, else with ctypes.

        Raises OSError when the library cannot load here (another architecture or libc).
        """
        self.library_path = path
        self._owns_file = owns_file  # a memory file or private copy, released by close()
        self.num_features = num_features
        self._lib: Any = None  # the ctypes handle, opened on first use (_ctypes_library)
        self._runtime: Any = None  # tl2cgen's batch predictor, built on first predict_batch
        self._module: Any = _load_module(path)
        if self._module is not None:
            expected = int(self._module.num_features)
            self._be: Any = self._module.predict_be
            self._predict_values: Any = self._module.predict_values
        else:  # a library vetted before blink's module: TL2cgen's predict, through ctypes
            self._be = self._predict_values = None
            expected = int(self._ctypes_library().get_num_feature())
        if expected != num_features:
            self._release_library()
            raise ArtifactIntegrityError(
                f"compiled library expects {expected} features, the model row lists {num_features}"
            )

    def _ctypes_library(self) -> Any:
        """The library through ctypes (batches, TreeSHAP, older libraries), opened once."""
        if self._lib is not None:
            return self._lib
        import ctypes

        lib = ctypes.CDLL(self.library_path)  # the module's own dlopen: the same library
        lib.predict.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        lib.predict.restype = None
        self._shap: Any = None  # blink_shap (exact TreeSHAP), when the library has it
        if hasattr(lib, "blink_shap"):
            lib.blink_shap.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
            lib.blink_shap.restype = ctypes.c_int32
            self._shap = lib.blink_shap
        self._matrix_rows: Any = None  # blink_predict_rows; None before blink's entry points
        self._tree_code_rows: Any = None  # blink_predict_rows_tl2cgen, in libraries that have it
        for name, attribute in (("blink_predict_rows", "_matrix_rows"),
                                ("blink_predict_rows_tl2cgen", "_tree_code_rows")):
            if hasattr(lib, "blink_abi_version") and hasattr(lib, name):
                entry = getattr(lib, name)
                entry.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
                entry.restype = None
                setattr(self, attribute, entry)
        if self._module is None:
            self._setup_tl2cgen_row(lib)
        self._lib = lib
        return lib

    def _setup_tl2cgen_row(self, lib: Any) -> None:
        """One reusable row of TL2cgen Entry unions, for predict_row on older libraries."""
        import ctypes

        class Entry(ctypes.Union):
            _fields_ = [("missing", ctypes.c_int), ("fvalue", ctypes.c_double),
                        ("qvalue", ctypes.c_int)]

        n = self.num_features
        self._row = (Entry * n)()
        # Two views of the row's memory: doubles to write values, and 32-bit ints whose even
        # slots alias each Entry's "missing" field (offset 0). Plain arrays index faster
        # than Entry objects, and this is the per-call hot path.
        self._values = (ctypes.c_double * n).from_buffer(self._row)
        self._words = (ctypes.c_int32 * (2 * n)).from_buffer(self._row)
        self._out = (ctypes.c_double * 1)()
        row_at, out_at = ctypes.addressof(self._row), ctypes.addressof(self._out)
        predict = lib.predict
        self._call: Any = lambda: predict(row_at, 0, out_at)

    def close(self) -> None:
        """Unload the library and release its memory file (the model left the cache).

        TL2cgen's runtime holds its own dlopen of the same path: it is freed first, then
        ctypes' handle, then the module's (only once nothing refers to the module: code
        still in use is never unmapped). The mapping goes, and the descriptor can be closed
        (its number may then serve another model's fresh dlopen safely).
        """
        if self._module is None and self._lib is None:
            return
        unloaded = self._release_library()
        # Not a shared library file (which other sessions load too). A memory file whose
        # library is still loaded stays open: glibc finds loaded libraries by path, so its
        # /proc/self/fd/N name must not pass to another model's file.
        if self._owns_file and unloaded:
            _remove_file(self.library_path)

    def _release_library(self) -> bool:
        """Drop every handle on the library; True when it is unloaded (or never was)."""
        if self._runtime is not None:
            from tl2cgen.libloader import _LIB, _check_call

            _check_call(_LIB.TL2cgenPredictorFree(self._runtime.handle))
            self._runtime.handle = None
            self._runtime = None
        self._be = self._predict_values = self._call = None
        if self._lib is not None:
            import _ctypes

            self._matrix_rows = self._shap = None
            _ctypes.dlclose(self._lib._handle)
            self._lib = None
        if self._module is None:
            return True
        # A module's functions refer to it and it to them: its namespace is cleared first,
        # so reference counting frees it. If anything else still holds it, the library
        # stays loaded: unmapping code that may still run would crash the server.
        import weakref

        alive = weakref.ref(self._module)
        vars(self._module).clear()
        self._module = None
        return alive() is None and _release_python_dlopen(self.library_path)

    @property
    def stored_scorer(self) -> Callable[[bytes], float] | None:
        """The library's scorer of one stored vector (big-endian float8s, NaN missing; it
        refuses another length), called as is: no Python frame between a score and the
        trees. None for a library built before blink's entry points."""
        return self._be  # type: ignore[no-any-return]

    @property
    def has_shap(self) -> bool:
        self._ctypes_library()
        return self._shap is not None

    def contributions(self, matrix: Any) -> Any:
        """Exact TreeSHAP values, as LightGBM's pred_contrib: (n, features + 1), base last."""
        import numpy as np

        self._ctypes_library()
        data = np.ascontiguousarray(matrix, dtype=np.float64).reshape(-1, self.num_features)
        out = np.empty((len(data), self.num_features + 1))
        status = self._shap(data.ctypes.data, len(data), out.ctypes.data)
        if status != 0:
            raise MemoryError(f"blink_shap failed (status {status})")
        return out

    def predict_row(self, values: Sequence[float]) -> float | None:
        """Probability for one row, or None when the row hits TL2cgen's missing-value bug."""
        if self._predict_values is not None:
            return self._predict_values(values)  # type: ignore[no-any-return]
        self._ctypes_library()
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
        return out[0]  # type: ignore[no-any-return]

    def predict_matrix(self, matrix: Any) -> tuple[Any, Any]:
        """Probabilities for a float64 matrix; returns (probabilities, rows hitting the bug)."""
        import numpy as np

        lib = self._ctypes_library()
        if self._matrix_rows is not None:
            out = self._rows(self._matrix_rows, matrix)
            return out, np.zeros(len(out), dtype=bool)
        data = np.array(matrix, dtype=np.float64, order="C", copy=True)
        bits = data.view(np.int64)
        nan = np.isnan(data)
        buggy = (((bits & 0xFFFFFFFF) == 0xFFFFFFFF) & ~nan).any(axis=1)
        bits[nan] = -1
        out = np.zeros(len(data))
        row_bytes = data.strides[0]
        base, out_base = data.ctypes.data, out.ctypes.data
        predict = lib.predict
        for i in range(len(data)):
            predict(base + i * row_bytes, 0, out_base + i * 8)
        return out, buggy

    def predict_matrix_tl2cgen(self, matrix: Any) -> Any:
        """Probabilities from TL2cgen's code alone, the reference blink's QuickScorer is held
        to bit for bit; None for a library without that entry point (built before it)."""
        self._ctypes_library()
        return None if self._tree_code_rows is None else self._rows(self._tree_code_rows, matrix)

    def _rows(self, entry: Any, matrix: Any) -> Any:
        """``entry`` (a blink_predict_rows* entry point) over the rows of ``matrix``."""
        import numpy as np

        data = np.ascontiguousarray(matrix, dtype=np.float64).reshape(-1, self.num_features)
        out = np.empty(len(data))
        entry(data.ctypes.data, len(data), out.ctypes.data)
        return out

    def predict_batch(self, matrix: Any) -> tuple[Any, Any]:
        """Like ``predict_matrix``, but the whole matrix goes to native code in one call.

        TL2cgen's runtime (one thread) loops over the rows in C; no Python work per row.
        Returns (probabilities, rows hitting the missing-value bug), as predict_matrix.
        """
        import numpy as np

        self._ctypes_library()
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


def _write_library(library: bytes) -> str:
    """Write the bytes where they can be loaded; returns that path (``_remove_file`` frees it).

    The library goes to an anonymous memory file (memfd) whose descriptor stays open while
    the model is loaded: nothing is left on disk, and ctypes and TL2cgen's batch runtime can
    dlopen the same path (glibc hands back the already loaded library). Where memfd is
    unavailable, the file goes to a private 0700 directory.
    """
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("blink-model")
        try:
            with open(fd, "wb", closefd=False) as handle:
                handle.write(library)
        except OSError:
            os.close(fd)
        else:
            return f"/proc/self/fd/{fd}"
    import tempfile  # only here: it costs ~8 ms of a session's first call to import

    directory = tempfile.mkdtemp(prefix="blink-model-")  # mode 0700
    path = os.path.join(directory, "model.so")
    with open(path, "wb") as handle:
        handle.write(library)
    return path


def _remove_file(path: str) -> None:
    """Release what ``_write_library`` wrote: close the memory file, or delete the copy."""
    if path.startswith("/proc/self/fd/"):
        os.close(int(path.rsplit("/", 1)[1]))
    else:
        os.unlink(path)
        os.rmdir(os.path.dirname(path))


class _ModuleSpec:
    """What ``_imp.create_dynamic`` reads of a module spec: its name and file."""

    __slots__ = ("name", "origin")

    def __init__(self, name: str, origin: str) -> None:
        self.name, self.origin = name, origin


def _load_module(path: str) -> Any:
    """The library's ``blink_model`` module, or None when it is not one (an older library).

    ``_imp`` is what importlib's ExtensionFileLoader calls; importing importlib.machinery
    would cost a session's first call ~1 ms more. The module is not put in sys.modules:
    each model's library is its own module object. Raises OSError when the library cannot
    load here at all.
    """
    import _imp

    try:
        module = _imp.create_dynamic(_ModuleSpec(MODULE_NAME, path))  # type: ignore[arg-type]
    except ImportError as exc:
        # Not loadable (OSError, as ctypes would say), or loaded but not a module: then
        # Python kept its dlopen, which is released here so close() can unload the library.
        if _release_python_dlopen(path):
            return None
        raise OSError(str(exc)) from None
    _imp.exec_dynamic(module)
    return module


def _release_python_dlopen(path: str) -> bool:
    """Drop the one dlopen reference Python's module loader took on the library at ``path``
    (it never closes its own); False when that library is not loaded."""
    import _ctypes

    try:
        handle = _ctypes.dlopen(path, os.RTLD_NOW | os.RTLD_NOLOAD)  # a second reference
    except OSError:
        return False
    _ctypes.dlclose(handle)  # that one
    _ctypes.dlclose(handle)  # and Python's
    return True


def _runtime_predictor(path: str) -> Any:
    """tl2cgen.Predictor on ``path`` with one thread.

    ``tl2cgen.Predictor()`` resolves symlinks, which turns /proc/self/fd/N into a name that
    does not exist, so we call the same C entry point it calls, with the path as is.
    """
    import ctypes

    import tl2cgen
    from tl2cgen.libloader import _LIB, _check_call
    from tl2cgen.util import c_str

    predictor = tl2cgen.Predictor.__new__(tl2cgen.Predictor)
    predictor.handle = ctypes.c_void_p()
    _check_call(_LIB.TL2cgenPredictorLoad(c_str(path), ctypes.c_int(1),
                                          ctypes.byref(predictor.handle)))
    predictor._load_metadata(predictor.handle)
    return predictor
