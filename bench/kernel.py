"""The raw kernel: the champion library's compiled trees over an in-memory matrix, one thread.

The reference of the batch target and of the one-client latency target (bench.throughput,
bench.latency).
"""

from __future__ import annotations

import time

import numpy as np

from bench.environment import Environment


class Kernel:
    """The raw kernel over the first ``rows`` users' in-memory matrix: the library's
    ``blink_predict_rows`` (TL2cgen's trees in a C loop, one thread)."""

    def __init__(self, env: Environment, rows: int) -> None:
        import ctypes

        from pyfuncs.predictor import CompiledPredictor

        self.rows = rows
        self.matrix = np.ascontiguousarray(env.population.features[:rows], dtype=np.float64)
        art = env.artifact
        self.compiled = CompiledPredictor(art.compiled_lib, art.compiled_lib_sha256,
                                          len(art.feature_names))
        self._run = ctypes.CDLL(self.compiled.library_path).blink_predict_rows  # same mapping
        self._run.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        self.out = np.empty(rows)

    def __call__(self) -> None:
        self._run(self.matrix.ctypes.data, self.rows, self.out.ctypes.data)

    def seconds(self) -> float:
        """Wall time of one pass."""
        start = time.perf_counter()
        self()
        return time.perf_counter() - start

    def us_per_row(self) -> float:
        """Microseconds per row of one pass."""
        return self.seconds() * 1e6 / self.rows
