"""Cold start (first blink_score of a new session) and model reload (promotion to use)."""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import psycopg

from bench.environment import APP_ROLE, Environment
from trainer import registry


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def cold_start(env: Environment, repeats: int) -> dict[str, Any]:
    """Median of ``repeats`` new sessions: connect, first blink_score, then warm calls.

    The first call of a session starts PL/Python, imports pyfuncs and loads the champion
    (hash check, dlopen of the compiled library); the calls after it are warm, the reference.
    Interleaved with those, new superuser sessions split a first call into those parts
    (``DO ... LANGUAGE plpython3u`` needs a superuser), for diagnosis.
    """
    user = env.population.user_ids[0]
    connect, first, warm = [], [], []
    steps: dict[str, list[float]] = {}
    for _ in range(repeats):
        with env.connect() as conn:
            for name, sql in (
                ("plpython_start_ms", "DO $$ pass $$ LANGUAGE plpython3u"),
                ("import_pyfuncs_ms", "DO $$ from pyfuncs import api $$ LANGUAGE plpython3u"),
                ("load_model_and_score_ms", f"SELECT blink_score('{user}')"),
            ):
                start = time.perf_counter()
                conn.execute(sql)
                steps.setdefault(name, []).append(_ms(start))
        start = time.perf_counter()
        with psycopg.connect(env.dsn(APP_ROLE), autocommit=True) as conn:
            connect.append(_ms(start))
            start = time.perf_counter()
            conn.execute("SELECT blink_score(%s)", [user]).fetchone()
            first.append(_ms(start))
            calls = []
            for _ in range(5):  # warm calls: plans prepared, model cached
                start = time.perf_counter()
                conn.execute("SELECT blink_score(%s)", [user]).fetchone()
                calls.append(_ms(start))
            warm.append(statistics.median(calls))
    return {
        "repeats": repeats,
        "connect_ms": round(statistics.median(connect), 3),
        "first_call_ms": round(statistics.median(first), 3),
        "warm_call_ms": round(statistics.median(warm), 3),
        "first_call_all_ms": [round(x, 3) for x in first],
        "breakdown_medians": {k: round(statistics.median(v), 3) for k, v in steps.items()},
    }


def reload(env: Environment, repeats: int) -> dict[str, Any]:
    """Time from a promotion's commit until an already open session scores with that model.

    Each repeat inserts a fresh copy of the model (a new id, never cached by the session),
    promotes it in another session, and, as soon as the commit returns, calls blink_decide
    in the open session until it reports the new model id. The champion is read by every
    call, so the first call after the commit already uses it; its time includes the load.
    """
    user = env.population.user_ids[0]
    times, polls, warm = [], [], []
    with env.connect() as admin, psycopg.connect(env.dsn(APP_ROLE), autocommit=True) as app:
        decide = "SELECT model_id FROM blink_decide(%s)"
        app.execute(decide, [user]).fetchone()
        for i in range(repeats):
            start = time.perf_counter()
            app.execute(decide, [user]).fetchone()
            warm.append(_ms(start))
            copy = dataclasses.replace(env.artifact, version=f"{env.artifact.version}-r{i}")
            model_id = registry.insert_model(admin, copy)
            registry.promote(admin, model_id, f"make bench: reload {i}")  # commits (autocommit)
            committed = time.perf_counter()
            calls = 0
            while calls < 1000:  # bounded; the first call is expected to see the new model
                calls += 1
                row = app.execute(decide, [user]).fetchone()
                if row is not None and row[0] == model_id:
                    break
            else:
                raise RuntimeError(f"the open session never scored with model {model_id}")
            times.append(_ms(committed))
            polls.append(calls)
        registry.promote(admin, env.model_id, "make bench: back to the benchmark model")
    return {
        "repeats": repeats,
        "reload_ms": round(statistics.median(times), 3),
        "reload_all_ms": [round(x, 3) for x in times],
        "calls_until_new_model": polls,
        "warm_call_ms": round(statistics.median(warm), 3),
    }
