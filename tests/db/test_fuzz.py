"""Fuzzing every blink_app function with generated documents, ids and arrays.

Seeded and bounded: ``make test`` runs a few thousand inputs; ``make fuzz`` runs many more
(BLINK_FUZZ_CASES, BLINK_FUZZ_SECONDS). Every call must either return a probability in
[0, 1] (or NULL where documented) or fail with one of blink's SQLSTATEs and a message that
starts with ``blink:``; the backend must never crash.
"""

from __future__ import annotations

import json
import os
import random
import time

import psycopg
import pytest

from tests.fix_db import APP_USER

CASES = int(os.environ.get("BLINK_FUZZ_CASES", "2500"))
SECONDS = float(os.environ.get("BLINK_FUZZ_SECONDS", "60"))
BLINK_SQLSTATES = {"22023", "55000", "P0002"}


def number_text(rng: random.Random) -> str:
    choice = rng.randrange(10)
    if choice == 0:
        return "9" * rng.choice([20, 400, 5000])  # beyond float8, beyond Python's int limit
    if choice == 1:
        return rng.choice(["1e400", "-1e400", "1e-400", "4.9e-324", "-0", "0.0"])
    if choice == 2:
        return repr(rng.uniform(-1, 1) * 1e308)
    if choice == 3:
        return str(rng.randrange(-10**6, 10**6))
    return repr(rng.gauss(0, 1000))


def value_text(rng: random.Random, depth: int = 0) -> str:
    choice = rng.randrange(12)
    if choice < 6:
        return number_text(rng)
    if choice == 6:
        return "null"
    if choice == 7:
        return rng.choice(["true", "false"])
    if choice == 8:
        return json.dumps(rng.choice(["", "high", "12", "NaN", "Infinity", "é\u0000"[:1]]))
    if choice == 9 and depth < 3:
        return "[" + ", ".join(value_text(rng, depth + 1) for _ in range(rng.randrange(3))) + "]"
    if choice == 10 and depth < 3:
        return "{" + ", ".join(f'"k{i}": {value_text(rng, depth + 1)}'
                               for i in range(rng.randrange(3))) + "}"
    if rng.random() < 0.2:
        width = rng.choice([200, 1500, 3000])
        return "[" * width + "]" * width  # deeper than Python's parser goes
    return number_text(rng)


def document_text(rng: random.Random, names: list[str]) -> str:
    keys = rng.sample(names, rng.randrange(len(names) + 1))
    keys += [rng.choice(["extra", "note", "metric_x", "", "Metric_debt_load30"])
             for _ in range(rng.randrange(3))]
    return "{" + ", ".join(f"{json.dumps(k)}: {value_text(rng)}" for k in keys) + "}"


def check(result, error) -> str:
    """'ok', 'null' or the SQLSTATE; fails the test on anything unexpected."""
    if error is not None:
        assert error.sqlstate in BLINK_SQLSTATES, (error.sqlstate, str(error)[:300])
        assert error.diag.message_primary.startswith("blink: "), str(error)[:300]
        assert "None" != error.diag.message_hint
        return error.sqlstate
    if result is None:
        return "null"
    assert 0.0 <= result <= 1.0, result
    return "ok"


def call(conn, sql: str, args: list):
    try:
        return conn.execute(sql, args).fetchall(), None
    except psycopg.errors.Error as exc:
        if isinstance(exc, psycopg.errors.InternalError_) or conn.broken:
            raise
        return None, exc


def test_fuzz_every_app_function(scored_db, model_a):
    rng = random.Random(20261122)
    names = list(model_a.artifact.feature_names)
    stored = [document_text(rng, names) for _ in range(300)]
    users = [f"fuzz-{i}" for i in range(len(stored))]
    with scored_db.connect() as owner:
        for user, text in zip(users, stored, strict=True):
            owner.execute("INSERT INTO blink.feature_store_snapshots (user_id, features) "
                          "VALUES (%s, %s::jsonb)", [user, text])
    outcomes: dict[str, int] = {}
    deadline = time.monotonic() + SECONDS
    with scored_db.connect(APP_USER) as app:
        pid = app.execute("SELECT pg_backend_pid()").fetchone()[0]
        app.add_notice_handler(lambda diag: None)  # batch WARNINGs for bad snapshots
        for case in range(CASES):
            if time.monotonic() > deadline:
                break
            kind = case % 5
            if kind == 0:
                rows, error = call(app, "SELECT blink_score_features(%s::jsonb)",
                                   [document_text(rng, names)])
                results = [rows[0][0]] if rows else [None]
            elif kind == 1:
                rows, error = call(app, "SELECT blink_score(%s)", [rng.choice(users + ["nobody"])])
                results = [rows[0][0]] if rows else [None]
            elif kind == 2:
                rows, error = call(app, "SELECT probability_default FROM blink_decide(%s)",
                                   [rng.choice(users)])
                results = [r[0] for r in rows] if rows else [None]
            elif kind == 3:
                ids = [rng.choice(users + ["nobody", None]) for _ in range(rng.randrange(40))]
                rows, error = call(app, "SELECT user_id, probability_default "
                                        "FROM blink_score_batch(%s)", [ids])
                if rows is not None:
                    assert [r[0] for r in rows] == ids
                results = [r[1] for r in rows] if rows else [None]
            else:
                rows, error = call(app, "SELECT probability_default, shap_value "
                                        "FROM blink_explain(%s)", [rng.choice(users)])
                results = [r[0] for r in rows] if rows else [None]
            for result in results:
                outcome = check(result, error)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        assert app.execute("SELECT pg_backend_pid()").fetchone()[0] == pid  # never crashed
    assert outcomes.get("ok", 0) > 100 and outcomes.get("22023", 0) > 100, outcomes


@pytest.mark.parametrize("bad", ["[]", "1", '"text"', "null"])
def test_documents_that_are_not_objects_are_named(scored_db, bad):
    with scored_db.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.InvalidParameterValue,
                           match="^blink: a feature document must be a JSON object"):
            app.execute("SELECT blink_score_features(%s::jsonb)", [bad])
