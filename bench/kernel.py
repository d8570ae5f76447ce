"""The raw kernel: the champion library's compiled trees over an in-memory matrix, one thread.

The reference of the batch target and of the one-client latency target (bench.throughput,
bench.latency). The library runs the trees two ways: TL2cgen's code over a batch
(``blink_predict_rows``, what blink_score_batch runs) and its one-row scorer, QuickScorer
(``blink_predict_rows_single``, what one score runs; pyfuncs.quickscorer), both timed here.
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
        self._batch = self._entry(library, "blink_predict_rows")
        self._single = (self._entry(library, "blink_predict_rows_single")
                        if hasattr(library, "blink_predict_rows_single") else None)
        self.out = np.empty(rows)  # the batch code's answers (the bench compares them)
        self._single_out = np.empty(rows)

    @staticmethod
    def _entry(library: Any, name: str) -> Any:
        import ctypes

        fn = getattr(library, name)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        fn.restype = None
        return fn

    def __call__(self) -> None:
        """One pass of TL2cgen's batch code over the matrix."""
        self._batch(self.matrix.ctypes.data, self.rows, self.out.ctypes.data)

    def seconds(self) -> float:
        """Wall time of one pass of TL2cgen's batch code (blink_score_batch's trees)."""
        return _wall(self)

    @property
    def has_single(self) -> bool:
        return self._single is not None

    def run_single(self) -> None:
        """One pass of the one-row scorer over the matrix, row by row."""
        assert self._single is not None
        self._single(self.matrix.ctypes.data, self.rows, self._single_out.ctypes.data)

    def single_seconds(self) -> float | None:
        """Wall time of one pass of the one-row scorer, hot; None for a library without it."""
        return None if self._single is None else _wall(self.run_single)

    def us_per_row(self) -> float:
        """Microseconds per row of running the trees once, hot: the faster of one pass of
        each of the library's two ways (a score must not be judged against the slower)."""
        passes = [s for s in (self.seconds(), self.single_seconds()) if s is not None]
        return min(passes) * 1e6 / self.rows


def _wall(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start
