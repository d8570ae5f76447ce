"""Batch throughput (rows/s) in the database against the compiled kernel and LightGBM.

References run in this process on the same in-memory float64 matrix of the same users:

* the raw kernel: the library's compiled trees over the whole matrix in one native call,
  one thread, the faster of its two ways (bench.kernel): its own rows (``blink_predict_rows``,
  QuickScorer's tables) and TL2cgen's generated code alone. TL2cgen's own runtime predictor
  cannot read blink's libraries, whose missing values are NaN (pyfuncs.library);
* blink's in-process path: ``CompiledPredictor.predict_batch`` (what the batch functions
  call) and ``predict_matrix`` (the same native call);
* LightGBM ``predict`` and ``pred_contrib`` (exact TreeSHAP), one thread.

In the database, over the same users: ``blink_score_batch(text[])`` beside a plain read of
the snapshots table (its reference with the kernel), and ``blink_score`` per row in one
statement beside the plain fetch of each user's latest snapshot (as the application role);
``blink_explain`` computed on demand and read back from its stored audit (application role);
``blink_rescore_pending`` (as the superuser, as pg_cron runs it), which scores, explains and
audits pending users: one run, then runs of several workers at once (one backend each, a
figure apart from the per-core one). Entry points missing from the checkout are looked up in
``pg_proc`` and reported as absent.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple, TypeVar

import numpy as np
import psycopg

from bench.environment import APP_ROLE, Environment
from bench.kernel import Kernel
from bench.stats import ratio, rows_per_s

T = TypeVar("T")  # what _between's run returns


def best_seconds(run: Callable[[], Any], *, min_total: float = 0.5, max_repeats: int = 5) -> float:
    """Median wall time of ``run`` over up to ``max_repeats`` runs (stop after ``min_total`` s)."""
    times: list[float] = []
    spent = 0.0
    while len(times) < max_repeats and (spent < min_total or len(times) < 1):
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
    return statistics.median(times)


def references(env: Environment, rows: int, kernel: Kernel) -> dict[str, Any]:
    """rows/s of the in-process predictors on the first ``rows`` users' matrix."""
    matrix, compiled, kernel_out = kernel.matrix, kernel.compiled, kernel.out
    rows_s = best_seconds(kernel)
    tree_code_s = best_seconds(kernel.run_tl2cgen)
    batch_s = None
    if hasattr(compiled, "predict_batch"):
        batch_s = best_seconds(lambda: compiled.predict_batch(matrix))
    ctypes_s = best_seconds(lambda: compiled.predict_matrix(matrix))
    lgbm_s = best_seconds(lambda: env.booster.predict(matrix, num_threads=1))
    lgbm_out = env.booster.predict(matrix, num_threads=1)
    return {
        "rows": rows,
        # The raw kernel, in the batch's reference: the faster of the two ways below.
        "kernel_rows_per_s": rows_per_s(rows, min(rows_s, tree_code_s)),
        # The library's rows (QuickScorer when the model has its tables): what scores run.
        "kernel_quickscorer_rows_per_s": rows_per_s(rows, rows_s),
        "kernel_tl2cgen_rows_per_s": rows_per_s(rows, tree_code_s),  # TL2cgen's code alone
        "blink_predict_batch_in_process_rows_per_s": (
            None if batch_s is None else rows_per_s(rows, batch_s)),
        "blink_ctypes_predict_matrix_rows_per_s": rows_per_s(rows, ctypes_s),
        "lightgbm_predict_rows_per_s": rows_per_s(rows, lgbm_s),
        "max_abs_diff_kernel_vs_lightgbm": float(np.abs(kernel_out - lgbm_out).max()),
    }


def function_exists(conn: psycopg.Connection, signature: str) -> bool:
    """True when ``signature`` (e.g. ``blink_score_batch(text[])``) names a function here."""
    row = conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", [signature]).fetchone()
    return bool(row and row[0])


def timed_statement(conn: psycopg.Connection, sql: str, params: list[Any]) -> tuple[float, Any]:
    """Wall seconds of one run of ``sql`` and its first row."""
    start = time.perf_counter()
    result = conn.execute(sql, params).fetchone()
    return time.perf_counter() - start, result


# The statements read their ids from the server (ids_on_server), so they time the database's
# work: sending 100,000 ids from Python costs ~1.5-2 us an id in the client (psycopg's text
# array), 15-25% of a batch, and the kernel is timed on a matrix already in memory too.
SERVER_IDS = "(SELECT ids FROM bench_ids)"
# One statement fetching each user's latest snapshot the way blink_score does, nothing else.
FETCH_ALL = (f"SELECT count(s.features) FROM unnest({SERVER_IDS}) AS t(u) "
             "CROSS JOIN LATERAL blink.latest_snapshot(t.u) s")
SCORE_ALL = f"SELECT count(blink_score(u)) FROM unnest({SERVER_IDS}) AS t(u)"
BATCH_ALL = f"SELECT count(probability_default) FROM blink_score_batch({SERVER_IDS})"
# The batch's read alone: every snapshot of the table (the bench's table holds one per user,
# the batch's users), read in its order up to the stored vector, as the batch reads it.
TABLE_READ = "SELECT count(feature_vector) FROM blink.feature_store_snapshots"


def ids_on_server(conn: psycopg.Connection, users: list[str]) -> None:
    """Keep ``users`` in this session's temporary table bench_ids (read by SERVER_IDS)."""
    conn.execute("CREATE TEMP TABLE bench_ids AS SELECT %s::text[] AS ids", [users])


def _counted_seconds(conn: psycopg.Connection, sql: str, rows: int, what: str,
                     params: list[Any] | None = None) -> float:
    """Wall time of one run of ``sql``, a count that must equal ``rows``."""
    start = time.perf_counter()
    row = conn.execute(sql, params).fetchone()
    seconds = time.perf_counter() - start
    if row != (rows,):
        raise RuntimeError(f"{what} scored {row} of {rows} users")
    return seconds


# Rounds of the table read and blink_score_batch, each round between two passes of the raw
# kernel: the batch target is the median of the rounds' ratios, as the latency targets are
# (a slow moment of the shared machine then hits both sides of a ratio), each against the
# faster of its two kernel passes (a stalled pass would make the kernel look slow and blink
# look good; one pass per round read 1.54x in a run where the machine stalled). 31 since
# session 22 (15 since 21, 7 since 18, 3 before): a round costs ~0.7 s, and one run's rounds
# spread 0.50-1.08; 31 give the median a 97% interval from the 10th to the 22nd
# (bench.stats.median_interval), 15 only from the 4th to the 12th, about 1.4 times as wide.
BATCH_ROUNDS = 31


def in_database(env: Environment, rows: int, kernel: Kernel) -> dict[str, Any]:
    """rows/s of scoring ``rows`` users inside the database, per available entry point."""
    users = env.population.user_ids[:rows]
    out: dict[str, Any] = {}
    with env.connect() as admin, psycopg.connect(env.dsn(APP_ROLE), autocommit=True) as app:
        # admin: the reference, the same users' latest snapshots fetched; app: blink_score
        ids_on_server(admin, users)
        admin.execute("SELECT count(*) FROM blink.latest_snapshot(%s)", [users[0]]).fetchone()
        ids_on_server(app, users)
        app.execute("SELECT blink_score(%s)", [users[0]]).fetchone()  # load the model first
        fetch_s, score_s, limits, one_pass = _per_call_rounds(admin, app, kernel, rows)
        out["plain_fetch_per_row_rows_per_s"] = rows_per_s(rows, fetch_s)
        out["blink_score_per_row_rows_per_s"] = rows_per_s(rows, score_s)
        out["blink_score_per_row_round_ratios_to_fetch_and_kernel"] = limits
        out["blink_score_per_row_round_ratios_one_pass"] = one_pass
        out["blink_score_batch_rows_per_s"] = None
        out["blink_score_batch_ids_from_client_rows_per_s"] = None
        if function_exists(app, "blink_score_batch(text[])"):
            app.execute("SELECT count(*) FROM blink_score_batch(%s::text[])", [users[:10]])
            admin.execute(TABLE_READ).fetchone()  # a cold first read would flatter blink
            read_s, batch_s, ratios, limits, one_pass = _batch_rounds(admin, app, kernel, rows)
            out["table_read_rows_per_s"] = rows_per_s(rows, read_s)
            out["blink_score_batch_rows_per_s"] = rows_per_s(rows, batch_s)
            out["blink_score_batch_round_ratios_to_kernel"] = ratios
            out["blink_score_batch_round_ratios_to_read_and_kernel"] = limits
            out["blink_score_batch_round_ratios_one_pass"] = one_pass
            # The application's view: the same call with the ids sent from Python.
            seconds = _counted_seconds(
                app, "SELECT count(probability_default) FROM blink_score_batch(%s::text[])",
                rows, "blink_score_batch", [users])
            out["blink_score_batch_ids_from_client_rows_per_s"] = rows_per_s(rows, seconds)
    return out


# Rounds of the per-call target's three figures: the plain fetch, blink_score per row and
# the raw kernel, back to back, so a slow moment of the shared machine reaches all three
# (measured once each, minutes apart, one run read 7.0 µs a call where the next read 4.2).
# 7 since session 21 (3 before): a round costs ~2 s, and 3 rounds' median has a 75%
# interval at best, 7 rounds' a 98.4% one (bench.stats.median_interval).
PER_CALL_ROUNDS = 7


class _Round(NamedTuple):
    """One round's seconds: the kernel's faster pass before and after, each statement's
    faster pass in the round, and each statement's first pass (one pass, before session 19)."""

    kernel_s: float
    reference_s: float
    blink_s: float
    reference_1: float
    blink_1: float


def _rounds(count: int, kernel: Kernel, reference: Callable[[], float],
            blink: Callable[[], float]) -> list[_Round]:
    """``count`` rounds of a reference statement and blink's in turns (_passes), each
    between two passes of the kernel (_between)."""
    return [_Round(kernel_s, *passes) for kernel_s, passes in (
        _between(kernel.seconds, partial(_passes, reference, blink)) for _ in range(count))]


def _per_call_rounds(admin: psycopg.Connection, app: psycopg.Connection, kernel: Kernel,
                     rows: int) -> tuple[float, float, list[float], list[float]]:
    """Median seconds of FETCH_ALL and SCORE_ALL, and each round's blink_score time over
    (fetch + kernel) time, each the faster of its two passes in the round (_passes); then
    the same ratios from one pass of the fetch and of blink_score (before session 19)."""
    rounds = _rounds(PER_CALL_ROUNDS, kernel,
                     partial(_counted_seconds, admin, FETCH_ALL, rows, "the fetch"),
                     partial(_counted_seconds, app, SCORE_ALL, rows, "blink_score"))
    return (statistics.median(r.reference_s for r in rounds),
            statistics.median(r.blink_s for r in rounds),
            [round(r.blink_s / (r.reference_s + r.kernel_s), 4) for r in rounds],
            [round(r.blink_1 / (r.reference_1 + r.kernel_s), 4) for r in rounds])


def _batch_rounds(admin: psycopg.Connection, app: psycopg.Connection, kernel: Kernel,
                  rows: int) -> tuple[float, float, list[float], list[float], list[float]]:
    """Median seconds of TABLE_READ and BATCH_ALL, and per round the ratios kernel / batch
    and (table read + kernel) / batch (time), each the faster of its two passes in the
    round (_passes); then the second ratio from one pass of the read and of the batch
    (before session 19)."""
    rounds = _rounds(BATCH_ROUNDS, kernel,
                     partial(_counted_seconds, admin, TABLE_READ, rows, "the table read"),
                     partial(_counted_seconds, app, BATCH_ALL, rows, "blink_score_batch"))
    return (statistics.median(r.reference_s for r in rounds),
            statistics.median(r.blink_s for r in rounds),
            [round(r.kernel_s / r.blink_s, 4) for r in rounds],
            [round((r.reference_s + r.kernel_s) / r.blink_s, 4) for r in rounds],
            [round((r.reference_1 + r.kernel_s) / r.blink_1, 4) for r in rounds])


def _passes(reference: Callable[[], float],
            blink: Callable[[], float]) -> tuple[float, float, float, float]:
    """Two passes each of a reference statement and blink's, in turns (reference, blink,
    reference, blink): the faster of each side's two, then each side's first. The kernel
    beside them is the faster of its two passes (_between), so since session 19 every side
    of a ratio has the same two chances to miss a stall of the shared machine; with one
    pass, a stall in blink's statement alone read as blink's cost, and one in the
    reference's alone as the reference's (docs/benchmarks.md, method notes)."""
    reference_1, blink_1 = reference(), blink()
    reference_2, blink_2 = reference(), blink()
    return min(reference_1, reference_2), min(blink_1, blink_2), reference_1, blink_1


def _between(reference: Callable[[], float], run: Callable[[], T]) -> tuple[float, T]:
    """What ``run`` returns (its seconds) and the seconds of the faster of two ``reference``
    passes just before and just after it: (reference, run's). A stalled reference pass would
    make blink look good."""
    before = reference()
    seconds = run()
    return min(before, reference()), seconds


def batch(env: Environment, kernel: Kernel) -> dict[str, Any]:
    """Batch figures over the kernel's users and their ratios to the raw kernel's rows/s."""
    result = references(env, kernel.rows, kernel)
    result.update(in_database(env, kernel.rows, kernel))
    kernel_rows_per_s = result["kernel_rows_per_s"]
    result["ratios_to_kernel"] = {
        key: ratio(value, kernel_rows_per_s) for key, value in result.items()
        if key.endswith("_rows_per_s") and key not in (
            "kernel_rows_per_s", "plain_fetch_per_row_rows_per_s", "table_read_rows_per_s")
    }
    return result


EXPLAIN_ALL = "SELECT count(*) FROM unnest(%s::text[]) AS t(u), LATERAL blink_explain(u)"
# blink_explain on demand runs in rounds over parts of the users, each between two passes
# of LightGBM's pred_contrib over the same part: the target is the median of the rounds'
# ratios, each against the faster pass, as the batch's is (one pass each way swung
# 0.80-1.45x on this VM).
EXPLAIN_ROUNDS = 4


def explanations(env: Environment, rows: int, rescore_users: int, rescore_seconds: float,
                 rescore_workers: int = 2) -> dict[str, Any]:
    """Explanation rows/s against LightGBM pred_contrib (one thread) on the same users.

    blink_explain runs first on the first ``rows`` users (nothing stored yet: it computes
    and stores each audit) in EXPLAIN_ROUNDS parts, each between two pred_contrib passes
    over the same part (the faster one counts); then again on all of them (it reads the
    stored audits back). Then blink_rescore_pending scores, explains and audits up to
    ``rescore_users`` other users: half in one run, then the rest split among
    ``rescore_workers`` runs at once (rescore_with_workers).
    """
    matrix = np.ascontiguousarray(env.population.features[:rows], dtype=np.float64)
    users = env.population.user_ids[:rows]

    def contrib_seconds(part: slice) -> float:
        start = time.perf_counter()
        env.booster.predict(matrix[part], pred_contrib=True, num_threads=1)
        return time.perf_counter() - start

    def explain_seconds(app: psycopg.Connection, part: slice) -> float:
        return timed_statement(app, EXPLAIN_ALL, [users[part]])[0]

    result: dict[str, Any] = {"rows": rows, "absent": []}
    with psycopg.connect(env.dsn(APP_ROLE), autocommit=True) as app:
        if function_exists(app, "blink_explain(text)"):
            # Warm up (model, booster for SHAP) on a user outside both measured sets.
            app.execute("SELECT count(*) FROM blink_explain(%s)",
                        [env.population.user_ids[-1]]).fetchone()
            contrib_s = explain_s = 0.0
            ratios = []
            for part in _parts(rows, EXPLAIN_ROUNDS):
                reference_s, seconds = _between(partial(contrib_seconds, part),
                                                partial(explain_seconds, app, part))
                contrib_s += reference_s
                explain_s += seconds
                ratios.append(round(reference_s / seconds, 4))
            result["lightgbm_pred_contrib_rows_per_s"] = rows_per_s(rows, contrib_s)
            result["blink_explain_on_demand_rows_per_s"] = rows_per_s(rows, explain_s)
            result["blink_explain_on_demand_round_ratios_to_pred_contrib"] = ratios
            seconds, _ = timed_statement(app, EXPLAIN_ALL, [users])
            result["blink_explain_stored_rows_per_s"] = rows_per_s(rows, seconds)
        else:
            result["absent"].append("blink_explain(text)")
            result["lightgbm_pred_contrib_rows_per_s"] = rows_per_s(rows, best_seconds(
                lambda: contrib_seconds(slice(0, rows)), max_repeats=3))
    reference = result["lightgbm_pred_contrib_rows_per_s"]
    with env.connect() as admin:
        if function_exists(admin, RESCORE_SIGNATURE):
            warm_rescoring(admin)
            seconds, row = timed_statement(
                admin, "SELECT blink_rescore_pending(%s, %s, 500)",
                [rescore_users // 2, rescore_seconds])
            summary = row[0]
            result["rescore_summary"] = summary
            result["rescore_users"] = summary["scored"]
            result["blink_rescore_pending_rows_per_s"] = rows_per_s(summary["scored"], seconds)
            if rescore_workers > 1:
                result.update(rescore_with_workers(
                    env, rescore_workers, (rescore_users - rescore_users // 2) // rescore_workers,
                    rescore_seconds))
            result.update(idle_ticks(admin, rescore_seconds))
        else:
            result["absent"].append(RESCORE_SIGNATURE)
    result["ratios_to_pred_contrib"] = {
        key: ratio(value, reference) for key, value in result.items()
        if key.endswith("_rows_per_s") and key != "lightgbm_pred_contrib_rows_per_s"
    }
    return result


RESCORE_SIGNATURE = "blink_rescore_pending(integer,double precision,integer,integer,integer)"


def warm_rescoring(conn: psycopg.Connection) -> None:
    """Start PL/Python and import blink's rescoring in this session, scoring nobody (no
    batch starts after max_seconds): the timed runs then measure rescoring, not a session's
    start (~20 ms, ~120 ms on the quick run's first sessions)."""
    summary = _one(conn, "SELECT blink_rescore_pending(max_seconds => 1e-9)")
    if summary["scored"] != 0:
        raise RuntimeError(f"the warm-up rescored users: {summary}")


def rescore_with_workers(env: Environment, workers: int, max_users: int,
                         max_seconds: float) -> dict[str, Any]:
    """Runs of blink_rescore_pending for worker 0 .. workers - 1, at once, each in its own
    session (as pg_cron runs one job per worker, docs/rescoring.md "More cores"): their
    users together over the wall time from the common start to the last one's end."""
    connections = [env.connect() for _ in range(workers)]
    summaries: list[Any] = [None] * workers
    errors: list[BaseException] = []
    start = threading.Barrier(workers + 1)

    def run(k: int) -> None:
        try:
            warm_rescoring(connections[k])
            start.wait()
            summaries[k] = _one(
                connections[k],
                "SELECT blink_rescore_pending(%s, %s, 500, worker => %s, workers => %s)",
                [max_users, max_seconds, k, workers])
        except BaseException as exc:  # raised below; nobody may wait for this thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(workers)]
    try:
        for thread in threads:
            thread.start()
        try:
            start.wait()
        except threading.BrokenBarrierError:
            pass  # a worker failed before the start: its error is raised below
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - began
    finally:
        for conn in connections:
            conn.close()
    if errors:
        raise RuntimeError("a rescoring worker failed") from errors[0]
    if any(s is None or not s["ran"] for s in summaries):
        raise RuntimeError(f"a rescoring worker did not run: {summaries}")
    scored = sum(s["scored"] for s in summaries)
    return {"rescore_workers": workers, "rescore_workers_summaries": summaries,
            "rescore_workers_users": scored,
            "blink_rescore_pending_workers_rows_per_s": rows_per_s(scored, seconds)}


IDLE_TICKS = 3
RESCORE_ONCE = "SELECT blink_rescore_pending(max_seconds => %s)"


def idle_ticks(conn: psycopg.Connection, max_seconds: float) -> dict[str, Any]:
    """What a rescoring tick costs when nothing changed (information, not a target).

    One run finishes whatever is pending, which leaves the cursors of a complete run. Then
    IDLE_TICKS times in turns: a run that finds its pending users among the snapshots
    written since (nothing), and a run that reads every user (the cursors aged past
    rescore.FULL_SCAN_EVERY, as on a new champion or the daily full scan); medians.
    """
    done = _one(conn, RESCORE_ONCE, [max_seconds])
    if not done["complete"]:
        return {"rescore_idle_tick": f"not measured: the run finishing the pending users "
                                     f"was cut short ({done})"}
    since: list[float] = []
    every: list[float] = []
    for _ in range(IDLE_TICKS):
        seconds, (summary,) = timed_statement(conn, RESCORE_ONCE, [max_seconds])
        if summary["scored"] or summary["full_scans"]:
            raise RuntimeError(f"an idle tick scored or read every user: {summary}")
        since.append(seconds)
        conn.execute("UPDATE blink.rescore_cursors SET swept_at = swept_at - interval '2 days'")
        seconds, (summary,) = timed_statement(conn, RESCORE_ONCE, [max_seconds])
        if summary["scored"] or summary["full_scans"] != [summary["champion_id"]]:
            raise RuntimeError(f"a full scan tick scored or did not read every user: {summary}")
        every.append(seconds)
    users = _one(conn, "SELECT count(DISTINCT user_id) FROM blink.feature_store_snapshots")
    return {"rescore_idle_tick_users": users,
            "rescore_idle_tick_ms": round(statistics.median(since) * 1000, 2),
            "rescore_idle_tick_every_user_ms": round(statistics.median(every) * 1000, 2),
            "rescore_idle_tick_ms_rounds": [round(s * 1000, 2) for s in since],
            "rescore_idle_tick_every_user_ms_rounds": [round(s * 1000, 2) for s in every]}


def _one(conn: psycopg.Connection, sql: str, params: list[Any] | None = None) -> Any:
    """The single value ``sql`` returns."""
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {sql}")
    return row[0]


def _parts(rows: int, count: int) -> list[slice]:
    """``rows`` split into up to ``count`` consecutive slices of near-equal size."""
    bounds = np.linspace(0, rows, min(count, rows) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
