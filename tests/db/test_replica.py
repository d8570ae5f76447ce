"""blink on a hot standby made with pg_basebackup: reads answer as on the primary, writes are
refused cleanly, a promotion reaches open standby sessions by replay."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import psycopg
import pytest

from devenv.replica import Standby
from tests.fix_db import (
    APP_USER,
    TEMPLATE,
    create_database,
    drop_database,
    insert_snapshots,
    install,
    python_scored,
)

USERS = 300


@pytest.fixture(scope="module")
def replicated(cluster, template_db, model_a):
    """A primary database (model_a champion, snapshots) and a standby of its cluster."""
    primary = create_database(cluster, TEMPLATE)
    with primary.connect() as conn:
        insert_snapshots(conn, model_a.population.user_ids[:USERS],
                         model_a.population.documents()[:USERS])
        install(conn, model_a.artifact)
    root = Path(tempfile.mkdtemp(prefix="blink-standby-"))  # the server user must enter it
    root.chmod(0o755)
    standby = Standby(root, primary.name)
    standby.create(primary.dsn())
    standby.start()
    try:
        assert standby.wait_for_replay(primary.dsn())
        yield primary, standby
    finally:
        standby.stop()
        drop_database(primary)
        shutil.rmtree(root, ignore_errors=True)


def standby_app(standby: Standby) -> psycopg.Connection:
    return psycopg.connect(standby.url(user=APP_USER), autocommit=True)


def test_the_standby_is_in_recovery_and_scores_exactly_as_the_primary(replicated, model_a):
    primary, standby = replicated
    users = model_a.population.user_ids[:USERS]
    queries = {
        "score": "SELECT blink_score(%s)",
        "decide": "SELECT probability_default, decision, risk_band, model_id FROM "
                  "blink_decide(%s)",
    }
    results = {}
    for name, url in (("primary", primary.dsn(APP_USER)), ("standby", standby.url(user=APP_USER))):
        with psycopg.connect(url, autocommit=True) as app:
            results[name] = {
                q: [app.execute(sql, [u]).fetchone() for u in users] for q, sql in queries.items()}
            results[name]["batch"] = app.execute(
                "SELECT user_id, probability_default, decision FROM blink_score_batch(%s)",
                [users[::-1]]).fetchall()
            results[name]["features"] = app.execute(
                "SELECT blink_score_features('{\"metric_overdraft_count90\": 2}')").fetchone()
            results[name]["recovery"] = app.execute("SELECT pg_is_in_recovery()").fetchone()
    assert results["primary"]["recovery"] == (False,) and results["standby"]["recovery"] == (True,)
    for key in ("score", "decide", "batch", "features"):
        assert results["standby"][key] == results["primary"][key], key
    got = np.array([r[0] for r in results["standby"]["score"]])
    assert np.abs(got - model_a.predict(model_a.population.features[:USERS])).max() <= 1e-6


def test_writes_are_refused_cleanly_and_explanations_still_answer(replicated):
    primary, standby = replicated
    with standby_app(standby) as app:
        rows = app.execute("SELECT rank, source, scored_at FROM blink_explain('user-5')").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert {r[1] for r in rows} == {"on-demand"} and {r[2] for r in rows} == {None}  # not stored
    with psycopg.connect(standby.url(), autocommit=True) as owner:
        summary = owner.execute("SELECT blink_rescore_pending()").fetchone()[0]
        assert summary["ran"] is False and "standby" in summary["reason"]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            owner.execute("SELECT blink_promote((SELECT model_id FROM blink.champion()), 'x')")
    with primary.connect() as conn:  # nothing was written anywhere
        assert conn.execute("SELECT count(*) FROM blink.risk_score_audits").fetchone()[0] == 0


def test_a_promotion_reaches_an_open_standby_session_after_replay(replicated, model_a, model_b):
    primary, standby = replicated
    with standby_app(standby) as app:  # opened before the promotion, kept open
        before = app.execute("SELECT blink_score('user-3')").fetchone()[0]
        old_id = app.execute("SELECT model_id FROM blink_champion()").fetchone()[0]
        with primary.connect() as conn:
            new_id = install(conn, model_b.artifact)
        assert standby.wait_for_replay(primary.dsn())
        after = app.execute("SELECT blink_score('user-3')").fetchone()[0]
        now_id = app.execute("SELECT model_id FROM blink_champion()").fetchone()[0]
    assert old_id != new_id and now_id == new_id
    assert after == pytest.approx(model_b.predict(model_a.population.features[3:4])[0], abs=1e-9)
    with psycopg.connect(primary.dsn(APP_USER), autocommit=True) as app:
        assert app.execute("SELECT blink_score('user-3')").fetchone()[0] == after
    assert after != before
    # That session wrote the new champion's library file on the standby: from now on its
    # sessions score in C (blink_native), without PL/Python.
    with psycopg.connect(standby.url(), autocommit=True) as owner:
        assert owner.execute("SELECT blink_score('user-3')").fetchone()[0] == after
        assert not python_scored(owner)
