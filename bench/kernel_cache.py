"""The compiled trees hot and cold in cache, built at -O3 and at blink's -Os, one thread.

    python -m bench.kernel_cache [--trees 400] [--leaves 31] [--rounds 7] [--calls 200]

Trains the benchmark's model shape on the synthetic users, builds its library twice with
``pyfuncs.library.build_library`` (TL2cgen's tree code at -O3, as TL2cgen builds it, and at
``TREE_CFLAGS``; blink's own code at -O3 in both), then measures per row:

* hot: one ``blink_predict_rows_tl2cgen`` call over many rows (TL2cgen's code alone);
* one row per call, warm: ``blink_predict_rows_tl2cgen`` on one row at a time, distinct rows back
  to back;
* one row per call, cold: the same after sweeping a buffer larger than the CPU's caches, as
  a statement's first prediction finds the code after a client round trip;
* and the library's one-row scorer, QuickScorer (``blink_predict_be``, what a score runs;
  pyfuncs.quickscorer), warm and cold the same way.

Rounds interleave the two builds so a noisy neighbour hits both alike; medians are printed,
with the ratio -Os / -O3 and both builds' largest difference to LightGBM. On a shared VM
only the ratios mean anything.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SWEEP_BYTES = 64 << 20  # larger than the last-level cache of the machines we run on


def _model(trees: int, leaves: int) -> tuple[Any, Any]:
    from trainer import synthetic
    from trainer.training import fit_booster

    population = synthetic.generate(40_000, seed=20261121, prefix="user-")
    booster = fit_booster(population.features[:30_000], population.defaulted[:30_000],
                          synthetic.FEATURES, num_boost_round=trees, seed=20261121,
                          params={"num_leaves": leaves, "min_data_in_leaf": 20})
    return booster, np.ascontiguousarray(population.features[30_000:], dtype=np.float64)


def _load(path: Path) -> tuple[Any, Any]:
    lib = ctypes.CDLL(str(path))
    rows = lib.blink_predict_rows_tl2cgen  # TL2cgen's code alone
    rows.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    rows.restype = None
    one = lib.blink_predict_be
    one.argtypes = [ctypes.c_char_p]
    one.restype = ctypes.c_double
    return rows, one


def _round(rows: Any, one: Any, matrix: Any, vectors: list[bytes], sweep: Any,
           calls: int) -> dict[str, float]:
    out = np.empty(len(matrix))
    start = time.perf_counter()
    rows(matrix.ctypes.data, len(matrix), out.ctypes.data)
    hot = (time.perf_counter() - start) / len(matrix)
    width = matrix.strides[0]
    one_row = {"": lambda i: rows(matrix.ctypes.data + i * width, 1, out.ctypes.data),
               "qs_": lambda i: one(vectors[i])}  # TL2cgen's code a row at a time; QuickScorer
    figures = {"hot": hot * 1e6}
    for name, call in one_row.items():
        start = time.perf_counter()
        for i in range(calls):
            call(i)
        figures[name + "warm"] = (time.perf_counter() - start) / calls * 1e6
        cold = []
        for i in range(calls):
            sweep.sum()  # evicts the library's code and data from every cache level
            start_ns = time.perf_counter_ns()
            call(i)
            cold.append((time.perf_counter_ns() - start_ns) / 1e3)
        figures[name + "cold"] = statistics.median(cold)
    return figures


def main(argv: list[str] | None = None) -> None:
    import treelite

    from pyfuncs.library import TREE_CFLAGS, build_library

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--trees", type=int, default=400)
    parser.add_argument("--leaves", type=int, default=31)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200, help="single-row calls per round")
    args = parser.parse_args(argv)

    booster, matrix = _model(args.trees, args.leaves)
    expected = booster.predict(matrix, num_threads=1)
    vectors = [row.astype(">f8").tobytes() for row in matrix[: args.calls]]
    sweep = np.ones(SWEEP_BYTES // 8)
    builds = {"-O3": ["-O3"], " ".join(TREE_CFLAGS): TREE_CFLAGS}
    with tempfile.TemporaryDirectory(prefix="blink-kernel-") as tmp:
        loaded: dict[str, tuple[Any, Any]] = {}
        sizes: dict[str, int] = {}
        diffs: dict[str, float] = {}
        for name, flags in builds.items():
            path = Path(tmp) / f"model{len(loaded)}.so"
            build_library(treelite.frontend.from_lightgbm(booster), path, tree_cflags=flags)
            loaded[name] = _load(path)
            sizes[name] = path.stat().st_size
            out = np.empty(len(matrix))
            loaded[name][0](matrix.ctypes.data, len(matrix), out.ctypes.data)
            diffs[name] = float(np.abs(out - expected).max())
        figures: dict[str, dict[str, list[float]]] = {n: {} for n in builds}
        for r in range(args.rounds):
            for name in (list(builds) if r % 2 == 0 else list(reversed(builds))):
                for key, value in _round(*loaded[name], matrix, vectors, sweep,
                                         args.calls).items():
                    figures[name].setdefault(key, []).append(value)

    print(f"model: {booster.num_trees()} trees x {args.leaves} leaves, {matrix.shape[1]} "
          f"features; {len(matrix)} rows hot, {args.calls} single-row calls; "
          f"medians of {args.rounds} rounds, µs per row")
    print(f"{'tree code':>10} {'library':>10} {'hot':>8} {'warm':>8} {'cold':>8} "
          f"{'max |diff| vs LightGBM':>24}")
    medians = {n: {k: statistics.median(v) for k, v in f.items()} for n, f in figures.items()}
    for name, m in medians.items():
        print(f"{name:>10} {sizes[name] / 1e6:8.2f}MB {m['hot']:8.2f} {m['warm']:8.2f} "
              f"{m['cold']:8.2f} {diffs[name]:24.3g}")
    small, fast = medians[" ".join(TREE_CFLAGS)], medians["-O3"]
    print("ratio " + ", ".join(f"{k} {small[k] / fast[k]:.2f}x" for k in ("hot", "warm", "cold"))
          + f" ({' '.join(TREE_CFLAGS)} / -O3; below 1 is faster)")
    print(f"one-row scorer (QuickScorer, same library): warm {small['qs_warm']:.2f}, cold "
          f"{small['qs_cold']:.2f} µs per row; {small['qs_cold'] / small['cold']:.2f}x "
          f"TL2cgen's code ({' '.join(TREE_CFLAGS)}) cold")


if __name__ == "__main__":
    main()
