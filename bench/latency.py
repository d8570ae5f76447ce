"""Single-user latency at 1, 4 and 16 clients: blink_score, the floor, the microservice.

Two drivers, each compared only with itself:

* pgbench runs ``SELECT blink_score(u)`` and the floor (the plain indexed SELECT of the
  user's latest snapshot), so the ratio blink/floor is what scoring adds to a fetch;
* the Python thread client runs ``blink_score`` through psycopg and the microservice over
  HTTP with the same loop, so the ratio microservice/blink carries no driver difference.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from bench import clients, microservice, pgbench
from bench.config import BenchConfig
from bench.environment import APP_ROLE, DATABASE, READER_ROLE, USER_PREFIX, Environment

# name -> (description, driver)
TARGETS = {
    "floor": ("plain indexed SELECT of the latest snapshot", "pgbench"),
    "blink_score": ("SELECT blink_score(u)", "pgbench"),
    "blink_score_py": ("SELECT blink_score(u), same client as the microservice", "python"),
    "microservice": ("FastAPI+uvicorn+LightGBM, GET /score/u over HTTP", "python"),
}


def measure(env: Environment, config: BenchConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """All latency points: ``{"points": {target: {str(clients): summary}}, ...}``.

    Points are interleaved (every target at 1 client, then at 4, ...) so a burst of noise on
    the shared machine hits neighbours, not one target.
    """
    results: dict[str, dict[str, Any]] = {name: {} for name in TARGETS}
    user_ids = env.population.user_ids
    with microservice.serve(env.dsn(READER_ROLE), env.model_file,
                            env.workdir / "microservice.log",
                            timeout=config.timeout_seconds) as port:
        agreement = check_same_answers(env, port, user_ids[:50])
        for n in config.concurrency:
            for name in TARGETS:
                log(f"latency: {name} at {n} client(s)")
                if TARGETS[name][1] == "pgbench":
                    summary = pgbench.run(
                        name, host=env.host, port=env.port, database=DATABASE,
                        user=APP_ROLE if name == "blink_score" else READER_ROLE,
                        clients=n, seconds=config.latency_seconds, n_users=env.n_users,
                        prefix=USER_PREFIX, warmup=config.warmup_requests,
                        timeout=config.timeout_seconds,
                    )
                else:
                    make: Callable[[], clients.Session] = (
                        partial(clients.HttpSession, port) if name == "microservice"
                        else partial(clients.SqlSession, env.dsn(APP_ROLE))
                    )
                    summary = clients.run(
                        make, clients=n, seconds=config.latency_seconds,
                        max_requests=config.latency_max_requests,
                        warmup=config.warmup_requests, user_ids=user_ids, seed=config.seed + n,
                    )
                results[name][str(n)] = summary
    return {
        "targets": {name: {"what": what, "driver": driver}
                    for name, (what, driver) in TARGETS.items()},
        "points": results,
        "max_abs_diff_blink_vs_microservice": agreement,
    }


def check_same_answers(env: Environment, port: int, user_ids: list[str]) -> float:
    """Largest |blink_score - microservice| over ``user_ids`` (both score the same model)."""
    sql = clients.SqlSession(env.dsn(APP_ROLE))
    http = clients.HttpSession(port)
    try:
        return max(abs(sql.call(u) - http.call(u)) for u in user_ids)
    finally:
        sql.close()
        http.close()
