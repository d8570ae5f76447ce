"""Compile and load a stand-alone blink_shap library: for the tests and the speed bench.

It lives in bench/, not pyfuncs/: nothing on the server runs it.

In production the model's library is built by pyfuncs.vet_worker with TL2cgen's sources;
this helper builds only the SHAP half (treeshap.c + the generated tables) so the tests can
compare it with LightGBM's pred_contrib. It compiles as production does (blink's own flags,
pyfuncs.library), and refuses any compiler warning.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyfuncs.library import OWN_CFLAGS, compile_sources
from pyfuncs.shap_codegen import native_sources

WARNINGS = ["-Wall", "-Wextra", "-Werror"]


def build_library(sources: dict[str, str], directory: str) -> str:
    """Write ``sources`` plus treeshap.c/.h into ``directory``, compile, return the .so path."""
    files = {**native_sources(), **sources}
    for name, text in files.items():
        if os.path.basename(name) != name:
            raise ValueError(f"source name {name!r} is not a plain file name")
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(text)
    path = os.path.join(directory, "libblinkshap.so")
    compile_sources(Path(directory), {n[:-2]: OWN_CFLAGS + WARNINGS for n in sorted(files)
                                      if n.endswith(".c")}, Path(path), threads=1)
    return path


def load_shap(path: str, num_features: int) -> Callable[[Any], Any]:
    """``shap(rows) -> ndarray (n, num_features + 1)`` calling the library's blink_shap."""
    import numpy as np

    lib = ctypes.CDLL(path)
    fn = lib.blink_shap
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    fn.restype = ctypes.c_int32

    def shap(rows: Any) -> Any:
        x = np.ascontiguousarray(rows, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != num_features:
            raise ValueError(f"rows must be (n, {num_features}), got {x.shape}")
        out = np.empty((x.shape[0], num_features + 1), dtype=np.float64)
        rc = fn(x.ctypes.data, x.shape[0], out.ctypes.data)
        if rc != 0:
            raise RuntimeError(f"blink_shap returned {rc}")
        return out

    shap.library = lib  # type: ignore[attr-defined]  # keeps the library loaded
    return shap
