"""The raw kernel: the champion library's compiled trees over an in-memory matrix, one thread.

The reference of the batch target and of the one-client latency target (bench.throughput,
bench.latency). The library runs the trees two ways, both timed here: its own rows
(``blink_predict_rows``: QuickScorer's tables when the model has them, pyfuncs.quickscorer;
what one score and blink_score_batch run) and TL2cgen's generated code alone
(``blink_predict_rows_tl2cgen``). A target is judged against the faster of the two, so
blink is never measured against a slower way to run its own trees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.environment import Environment


class Kernel:
    """The raw kernel over the first ``rows`` users' in-memory matrix, one thread."""

    def __init__(self, env: Environment, rows: int) -> None:
        import ctypes

        from pyfuncs.predictor import CompiledPredictor

        self.rows = rows
        self.matrix = np.ascontiguousarray(env.population.features[:rows], dtype=np.float64)
        art = env.artifact
        self.compiled = CompiledPredictor(art.compiled_lib, art.compiled_lib_sha256,
                                          len(art.feature_names))
        library = ctypes.CDLL(self.compiled.library_path)  # the mapping CompiledPredictor made
        self._rows = self._entry(library, "blink_predict_rows")
        self._tree_code = self._entry(library, "blink_predict_rows_tl2cgen")
        self.out = np.empty(rows)  # the library's rows (the bench compares them)
        self._tree_code_out = np.empty(rows)

    @staticmethod
    def _entry(library: Any, name: str) -> Any:
        import ctypes

        fn = getattr(library, name)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        fn.restype = None
        return fn

    def __call__(self) -> None:
        """One pass of the library's rows over the matrix (what blink's scores run)."""
        self._rows(self.matrix.ctypes.data, self.rows, self.out.ctypes.data)

    def run_tl2cgen(self) -> None:
        """One pass of TL2cgen's code alone over the matrix."""
        self._tree_code(self.matrix.ctypes.data, self.rows, self._tree_code_out.ctypes.data)

    def seconds(self) -> float:
        """Wall time of running the trees over the matrix once: the faster of one pass each
        way (the library's rows, TL2cgen's code)."""
        return min(_wall(self), _wall(self.run_tl2cgen))

    def us_per_row(self) -> float:
        """Microseconds per row of running the trees once, hot (``seconds`` per row)."""
        return self.seconds() * 1e6 / self.rows


def _wall(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start
