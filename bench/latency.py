"""Single-user latency at 1, 4 and 16 clients: blink_score, the floor, the microservice.

Two drivers, each compared only with itself:

* pgbench runs ``SELECT blink_score(u)`` and the floor (the plain indexed SELECT of the
  user's latest snapshot), so the ratio blink/floor is what scoring adds to a fetch;
* the Python client (one process per client, bench.clients) runs ``blink_score`` through
  psycopg and the microservice over HTTP with the same loop, so the ratio microservice/blink
  carries no driver difference.

And once per round, the one-client pair that judges the added latency: the floor and
``blink_score`` in turns within *one* pgbench run, so both p50s come from the same seconds
(``one_client_pair``), with the raw kernel timed on both sides of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from bench import clients, microservice, pgbench
from bench.config import BenchConfig
from bench.environment import APP_ROLE, DATABASE, PAIR_ROLE, READER_ROLE, USER_PREFIX, Environment
from bench.kernel import Kernel
from bench.report import REFERENCES
from bench.stats import Samples, pool_rounds, round_ratios

# name -> (description, driver)
TARGETS = {
    "floor": ("plain indexed SELECT of the latest snapshot", "pgbench"),
    "blink_score": ("SELECT blink_score(u)", "pgbench"),
    "blink_score_py": ("SELECT blink_score(u), same client as the microservice", "python"),
    "microservice": ("FastAPI+uvicorn+LightGBM, GET /score/u over HTTP", "python"),
}

# As the summaries name them; the Python client's clients are processes since session 21
# (threads before: docs/benchmarks.md, "The Python client's processes").
DRIVERS = {"pgbench": "pgbench", "python": "python-processes"}
# The one-client pair runs the floor and blink_score in turns of this many transactions
# (5-10 ms each on a 2-vCPU VM; docs/benchmarks.md, method notes).
PAIR_BLOCK = 100


def round_order(index: int) -> list[str]:
    """Targets in the order round ``index`` (from 0) runs them: forward, then reversed.

    Each ratio's two sides (floor and blink_score, blink_score_py and microservice) stay
    next to each other in every round, and which of them goes first alternates.
    """
    names = list(TARGETS)
    return names if index % 2 == 0 else names[::-1]


def measure(env: Environment, config: BenchConfig, kernel: Kernel,
            log: Callable[[str], None]) -> dict[str, Any]:
    """All latency points: ``{"points": {target: {str(clients): summary}}, ...}``.

    Every point runs in ``config.latency_rounds`` rounds of ``latency_round_seconds`` each.
    One round measures every concurrency, and at each concurrency every target back to back
    (``round_order``), so a slow phase of the shared machine hits all targets alike and each
    point's rounds are spread over the whole latency phase. A point's percentiles pool the
    samples of all its rounds; its ratio to its reference is taken round by round (both
    sides from the same round) and reported as the median and the min-max of those ratios.
    """
    samples: dict[str, dict[int, list[Samples]]] = {
        name: {n: [] for n in config.concurrency} for name in TARGETS}
    when: dict[str, dict[int, list[float]]] = {
        name: {n: [] for n in config.concurrency} for name in TARGETS}
    pairs: list[dict[str, Any]] = []
    user_ids = env.population.user_ids
    seconds = config.latency_round_seconds
    started = time.perf_counter()
    with microservice.serve(env.dsn(READER_ROLE), env.model_file,
                            env.workdir / "microservice.log",
                            timeout=config.timeout_seconds) as port:
        agreement = check_same_answers(env, port, user_ids[:50])
        for r in range(config.latency_rounds):
            for n in config.concurrency:
                for name in round_order(r):
                    log(f"latency round {r + 1}/{config.latency_rounds}: {name} at {n} client(s)")
                    when[name][n].append(round(time.perf_counter() - started, 2))
                    if TARGETS[name][1] == "pgbench":
                        run = pgbench.run(
                            name, host=env.host, port=env.port, database=DATABASE,
                            user=APP_ROLE if name == "blink_score" else READER_ROLE,
                            clients=n, seconds=seconds, n_users=env.n_users,
                            prefix=USER_PREFIX, warmup=config.warmup_requests,
                            timeout=config.timeout_seconds,
                        )
                    else:
                        make: Callable[[], clients.Session] = (
                            partial(clients.HttpSession, port) if name == "microservice"
                            else partial(clients.SqlSession, env.dsn(APP_ROLE))
                        )
                        run = clients.run(
                            make, clients=n, seconds=seconds,
                            max_requests=config.latency_max_requests,
                            warmup=config.warmup_requests, user_ids=user_ids,
                            seed=config.seed + 1000 * r + n, processes=True,
                        )
                    samples[name][n].append(run)
                if n == 1:
                    log(f"latency round {r + 1}/{config.latency_rounds}: floor + blink_score "
                        "in one run at 1 client")
                    pairs.append(one_client_pair(env, config, kernel, r))
    points = combine(samples, when)
    return {
        "targets": {name: {"what": what, "driver": driver}
                    for name, (what, driver) in TARGETS.items()},
        "rounds": config.latency_rounds,
        "round_seconds": seconds,
        "round_orders": [round_order(r) for r in range(config.latency_rounds)],
        "points": points,
        "one_client_pairs": pairs,
        "max_abs_diff_blink_vs_microservice": agreement,
    }


def one_client_pair(env: Environment, config: BenchConfig, kernel: Kernel,
                    index: int) -> dict[str, Any]:
    """The latency ``blink_score`` adds to the floor at one client, in one pgbench run.

    One connection (as a role allowed both) runs the floor and ``blink_score`` in turns of
    PAIR_BLOCK transactions, so the two sides come from the same seconds: where the
    scheduler puts pgbench and the backend (docs/benchmarks.md, method notes) changes both
    alike, which two runs back to back do not guarantee. Each turn is long enough to find
    the caches holding its own work. The raw kernel over the batch's matrix is timed just
    before and just after the run, and the faster pass is the reference: a stall of the
    machine during one pass would otherwise make the kernel look slow and blink look good.
    """
    before = kernel.us_per_row()
    floor, score = pgbench.run_alternating(
        "floor", "blink_score", block=PAIR_BLOCK, host=env.host, port=env.port,
        database=DATABASE, user=PAIR_ROLE, clients=1, seconds=config.pair_round_seconds,
        n_users=env.n_users, prefix=USER_PREFIX, warmup=config.warmup_requests,
        timeout=config.timeout_seconds)
    return summarize_pair(index, floor, score, [before, kernel.us_per_row()])


# Resamples of the bootstrap that gives each pair's added latency its 95% interval.
PAIR_BOOTSTRAP = 400


def added_latency_us(floor: Samples, score: Samples) -> float | None:
    """blink_score's p50 minus the floor's, turn by turn (µs); None without both sides.

    Each floor turn and the blink_score turn after it ran within milliseconds of each other,
    so they share the vCPU mode, which can change within a round and move both p50s by
    ~100 µs (docs/benchmarks.md, method notes): pooled over a round that changed mode, the
    two p50s would compare different mixes of the modes. Each request is taken relative to
    the floor's median in its own pair of turns, then the p50 difference is that of the
    pooled relative latencies. In a round that stays in one mode it is the plain p50
    difference, up to the turns' own spread.
    """
    pairs = _turn_pairs(floor, score)
    return None if not pairs else _centred_difference(pairs) * 1000.0


def _turn_pairs(floor: Samples, score: Samples) -> list[tuple[np.ndarray, np.ndarray]]:
    """(floor latencies, blink_score latencies) of each pair of adjacent turns that both
    completed requests: floor's turn 2i with blink_score's turn 2i + 1. Samples without
    turns are one pair."""
    f, s = np.asarray(floor.latencies_ms), np.asarray(score.latencies_ms)
    if floor.turns is None or score.turns is None:
        return [(f, s)] if f.size and s.size else []
    ft, st = np.asarray(floor.turns) // 2, np.asarray(score.turns) // 2
    return [(f[ft == p], s[st == p]) for p in np.intersect1d(ft, st)]


def _centred_difference(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    centres = [float(np.median(f)) for f, _ in pairs]
    floor = np.concatenate([f - c for (f, _), c in zip(pairs, centres, strict=True)])
    score = np.concatenate([s - c for (_, s), c in zip(pairs, centres, strict=True)])
    return float(np.median(score) - np.median(floor))


def added_interval_us(floor: Samples, score: Samples,
                      seed: int) -> tuple[float, float] | None:
    """The 95% interval of ``added_latency_us`` (µs): a bootstrap that resamples whole pairs
    of turns, because requests in one turn share its moment of the machine and are not
    independent. None with fewer than 10 pairs (too few to resample)."""
    pairs = _turn_pairs(floor, score)
    if len(pairs) < 10:
        return None
    rng = np.random.default_rng(seed)
    draws = [_centred_difference([pairs[i] for i in rng.integers(0, len(pairs), len(pairs))])
             for _ in range(PAIR_BOOTSTRAP)]
    low, high = np.percentile(draws, [2.5, 97.5]) * 1000.0
    return float(low), float(high)


def summarize_pair(index: int, floor: Samples, score: Samples,
                   kernel_passes_us: Sequence[float]) -> dict[str, Any]:
    """One round's pair: both p50s, the added latency in µs (``added_latency_us``, with its
    95% interval) and in kernel rows (the faster of the kernel passes timed beside the run).

    A round where either side completed no request (a stalled machine) is kept with None
    figures, and bench.targets names it instead of judging it.
    """
    kernel_us = min(kernel_passes_us)
    pair: dict[str, Any] = {"round": index + 1,
                            "requests": {"floor": len(floor.latencies_ms),
                                         "blink_score": len(score.latencies_ms)},
                            "kernel_us_per_row_passes": [round(k, 3) for k in kernel_passes_us],
                            "kernel_us_per_row": round(kernel_us, 3), "floor_p50_ms": None,
                            "blink_score_p50_ms": None, "p50_difference_us": None,
                            "added_us": None, "added_us_95": None, "added_over_kernel": None}
    added_us = added_latency_us(floor, score)
    if added_us is not None:
        floor_p50 = float(np.median(floor.latencies_ms))
        score_p50 = float(np.median(score.latencies_ms))
        interval = added_interval_us(floor, score, seed=index)
        pair.update(floor_p50_ms=round(floor_p50, 4), blink_score_p50_ms=round(score_p50, 4),
                    p50_difference_us=round((score_p50 - floor_p50) * 1000.0, 2),
                    added_us=round(added_us, 2),
                    added_us_95=None if interval is None else [round(v, 2) for v in interval],
                    added_over_kernel=round(added_us / kernel_us, 4))
    return pair


def combine(samples: dict[str, dict[int, list[Samples]]],
            when: dict[str, dict[int, list[float]]] | None = None) -> dict[str, dict[str, Any]]:
    """Every point's pooled summary, its rounds and its per-round ratio to its reference.

    ``when[target][clients]`` (optional) is when each round of the point started, in
    seconds from the start of the latency phase.
    """
    points: dict[str, dict[str, Any]] = {name: {} for name in samples}
    for name, per_clients in samples.items():
        for n, rounds in per_clients.items():
            point = pool_rounds(rounds)
            point.update(driver=DRIVERS[TARGETS[name][1]], clients=n)
            for i, summary in enumerate(point["rounds"]):
                summary["round"] = i + 1
                if when is not None:
                    summary["started_at_s"] = when[name][n][i]
            points[name][str(n)] = point
    for name, by_clients in points.items():
        ref = REFERENCES.get(name)
        if ref is None or ref not in points:
            continue
        for key, point in by_clients.items():
            point["reference"] = ref
            point.update(round_ratios(point, points[ref][key]))
    for by_clients in points.values():  # the long list of rounds last, for readers
        for point in by_clients.values():
            point["rounds"] = point.pop("rounds")
    return points


def check_same_answers(env: Environment, port: int, user_ids: list[str]) -> float:
    """Largest |blink_score - microservice| over ``user_ids`` (both score the same model)."""
    sql = clients.SqlSession(env.dsn(APP_ROLE))
    http = clients.HttpSession(port)
    try:
        return max(abs(sql.call(u) - http.call(u)) for u in user_ids)
    finally:
        sql.close()
        http.close()
