"""`make bench-ab VARIANT=x.c`: a variant of blink_native's batch against the module, pair by pair.

How to tell whether a change to db/native/blink_native.c makes ``blink_score_batch`` faster
on a shared machine whose speed moves within a second (docs/benchmarks.md, session 22):

* both builds run in one bench server: the module as ``blink_score_batch``, the variant
  compiled under another name as ``blink_score_batch_ab`` with the same result columns;
* the two answer every user of the batch identically, or nothing is timed (unless
  ``--any-answers``: a variant that skips a step, to see what the step costs);
* then one batch of each, in alternating order, for ``--pairs`` pairs; the figure is the
  median of the pairs' differences (module minus variant, µs a row: positive means the
  variant is faster) with its distribution-free interval (bench.stats.median_interval).

Two batches in a row differ by a median 0.13 µs a row on these machines, rounds of several
batches by ±0.5: this resolves about 0.02 µs a row in 100 pairs. The module against itself
(``VARIANT=db/native/blink_native.c``) shows what no change reads as.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

from bench import config as bench_config
from bench.environment import APP_ROLE, Environment, prepare
from bench.stats import median_interval
from bench.throughput import BATCH_ALL, SERVER_IDS, ids_on_server, timed_statement
from devenv import native

VARIANT_BATCH = f"SELECT count(probability_default) FROM blink_score_batch_ab({SERVER_IDS})"
# Every answer of a batch, each row whole as text, in input order: what the two builds must
# agree on (float8's text is exact).
ANSWERS = ("SELECT array_agg(r::text ORDER BY r.ordinality) "
           "FROM {0}({1}) WITH ORDINALITY AS r")


class Comparison(NamedTuple):
    """Module minus variant, µs a row, pair by pair; and each side's median."""

    differences: list[float]
    module_us: float
    variant_us: float

    def summary(self) -> dict[str, Any]:
        interval = median_interval(self.differences)
        return {
            "pairs": len(self.differences),
            "module_us_per_row": round(self.module_us, 4),
            "variant_us_per_row": round(self.variant_us, 4),
            "difference_median_us": round(statistics.median(self.differences), 4),
            "difference_interval_us": None if interval is None
            else [round(interval[0], 4), round(interval[1], 4), interval[2]],
            "variant_faster_pairs": sum(d > 0 for d in self.differences),
        }


def build_variant(source: Path) -> Path:
    """The variant compiled where the bench's server finds modules, under a name of its own
    (a backend keeps a module file it loaded: a new name is a new build)."""
    if not source.is_file():
        raise ValueError(f"{source}: no such C file")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    target = native.module_dir() / f"{native.MODULE}_ab_{digest}.so"
    native.compile_module(source, target)
    return target


def define_variant(admin: psycopg.Connection, module: Path) -> None:
    """blink_score_batch_ab(text[]): the variant's batch, with the module's result columns."""
    [[columns]] = admin.execute(
        "SELECT pg_get_function_result('public.blink_score_batch(text[])'::regprocedure)")
    admin.execute(f"CREATE OR REPLACE FUNCTION public.blink_score_batch_ab(text[]) "
                  f"RETURNS {columns} LANGUAGE c STABLE STRICT "
                  f"AS '{module.stem}', 'blink_score_batch_v2'")
    admin.execute(f"GRANT EXECUTE ON FUNCTION public.blink_score_batch_ab(text[]) TO {APP_ROLE}")


def check_same_answers(app: psycopg.Connection) -> None:
    """Raise unless both builds answer every user of the batch identically."""
    mine, theirs = (_answers(app, name) for name in ("blink_score_batch", "blink_score_batch_ab"))
    if mine != theirs:
        first = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
                     None)
        raise ValueError("the variant answers differently from the module"
                         + (f": {len(mine)} rows against {len(theirs)}" if first is None
                            else f": element {first + 1}: {mine[first]} against {theirs[first]}"))


def _answers(app: psycopg.Connection, function: str) -> list[str]:
    row = app.execute(ANSWERS.format(function, SERVER_IDS)).fetchone()
    return list(row[0] or []) if row else []


def compare(app: psycopg.Connection, rows: int, pairs: int) -> Comparison:
    """``pairs`` pairs of one batch each, module and variant in alternating order."""
    module: list[float] = []
    variant: list[float] = []
    for k in range(pairs):
        order = ((BATCH_ALL, module), (VARIANT_BATCH, variant))
        for sql, times in order if k % 2 == 0 else order[::-1]:
            times.append(timed_statement(app, sql, [])[0] * 1e6 / rows)
    return Comparison([a - b for a, b in zip(module, variant, strict=True)],
                      statistics.median(module), statistics.median(variant))


def run(env: Environment, module: Path, pairs: int, any_answers: bool = False,
        log: Any = print) -> dict[str, Any]:
    """Check and time the variant built as ``module`` (build_variant) in ``env`` against
    the module."""
    users = list(env.population.user_ids)
    with env.connect() as admin, psycopg.connect(env.dsn(APP_ROLE), autocommit=True) as app:
        define_variant(admin, module)
        ids_on_server(app, users)
        if any_answers:
            log(f"answers not compared (--any-answers); {pairs} pairs of batches")
        else:
            check_same_answers(app)
            log(f"same answers for all {len(users):,} users; {pairs} pairs of batches")
        for sql in (BATCH_ALL, VARIANT_BATCH):  # each build loaded and warm
            app.execute(sql).fetchone()
        return compare(app, len(users), pairs).summary()


def report(summary: dict[str, Any]) -> str:
    interval = summary["difference_interval_us"]
    words = ("" if interval is None else
             f", its {interval[2]:.1%} interval {interval[0]:+.3f} to {interval[1]:+.3f}")
    return (f"module {summary['module_us_per_row']:.3f} µs a row, variant "
            f"{summary['variant_us_per_row']:.3f} (medians of {summary['pairs']} batches each)\n"
            f"module - variant, pair by pair: median {summary['difference_median_us']:+.3f} "
            f"µs a row{words}; the variant faster in {summary['variant_faster_pairs']} of "
            f"{summary['pairs']} pairs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.native_ab", description=__doc__)
    parser.add_argument("variant", type=Path, help="a C file: blink_native.c changed")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="the quick bench's data")
    parser.add_argument("--any-answers", action="store_true",
                        help="time the variant even if its answers differ (a step skipped)")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    try:
        module = build_variant(args.variant)  # before minutes of preparing the data
    except (ValueError, native.NativeBuildError) as exc:
        print(f"bench.native_ab: {exc}", file=sys.stderr)
        return 2
    config = bench_config.quick() if args.quick else bench_config.full()
    env = prepare(config, lambda message: print(message, flush=True))
    try:
        print(report(run(env, module, args.pairs, args.any_answers)))
    except (ValueError, psycopg.Error) as exc:
        print(f"bench.native_ab: {exc}", file=sys.stderr)
        return 2
    finally:
        env.close()
        module.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
