"""blink_shap (native TreeSHAP) against LightGBM's pred_contrib, one thread, same rows.

    python -m bench.treeshap_speed [--rows 2000] [--categorical] [--seed 0]

Trains the benchmark's model shape (400 trees of 31 leaves, binary, leaf-wise, 10 features,
about 5% missing; with --categorical two of them are category codes), builds the SHAP
library with gcc, and prints rows/s of both on the same rows (best of 3, interleaved so a
noisy neighbour hits both alike), their ratio and the largest absolute difference. On a
shared VM only the ratio means anything.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np

from bench.shap_library import build_library, load_shap
from pyfuncs.shap_codegen import shap_sources

FEATURES = 10
TRAIN_ROWS = 30_000


def _data(seed: int, categorical: bool) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(TRAIN_ROWS, FEATURES))
    x[:, 1] = rng.poisson(2.0, size=TRAIN_ROWS)  # counts: many exact zeros
    logit = np.tanh(x[:, 0]) - 0.3 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + 0.2 * x[:, 4]
    if categorical:
        x[:, 8] = rng.integers(0, 12, size=TRAIN_ROWS)
        x[:, 9] = rng.integers(0, 4, size=TRAIN_ROWS)
        logit += 0.4 * np.sin(x[:, 8]) + 0.3 * (x[:, 9] == 1)
    y = (logit + rng.logistic(size=TRAIN_ROWS) > 0).astype(int)
    x[rng.random(x.shape) < 0.05] = np.nan
    return x, y


def _best_of(runs: int, fns: dict[str, Callable[[], Any]]) -> dict[str, float]:
    best = {name: float("inf") for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="rows explained per run")
    parser.add_argument("--categorical", action="store_true", help="two categorical features")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    x, y = _data(args.seed, args.categorical)
    params = {"objective": "binary", "num_leaves": 31, "learning_rate": 0.05, "verbose": -1,
              "seed": args.seed, "num_threads": 1}
    cats: Any = [8, 9] if args.categorical else "auto"
    booster = lgb.train(params, lgb.Dataset(x, y, categorical_feature=cats), 400)
    rows = x[: args.rows].copy()

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sources = shap_sources(booster.dump_model(), FEATURES)
        t1 = time.perf_counter()
        shap = load_shap(build_library(sources, tmp), FEATURES)
        t2 = time.perf_counter()
        shap(rows[:1])  # first call fills the Q tables
        t3 = time.perf_counter()
        ours = shap(rows)
        theirs = np.asarray(booster.predict(rows, pred_contrib=True, num_threads=1))
        best = _best_of(3, {
            "blink_shap": lambda: shap(rows),
            "pred_contrib": lambda: booster.predict(rows, pred_contrib=True, num_threads=1),
        })

    n = len(rows)
    print(f"model: {booster.num_trees()} trees, 31 leaves, {FEATURES} features"
          f"{', 2 categorical' if args.categorical else ''}; {n} rows, best of 3")
    print(f"codegen {t1 - t0:.2f}s, gcc {t2 - t1:.2f}s, first call (tables) {t3 - t2:.3f}s")
    for name, secs in best.items():
        print(f"{name:>13}: {n / secs:10.0f} rows/s  ({secs / n * 1e6:7.1f} us/row)")
    print(f"        ratio: {best['pred_contrib'] / best['blink_shap']:.2f}x")
    print(f"max |diff|   : {np.abs(ours - theirs).max():.3g}")


if __name__ == "__main__":
    main()
