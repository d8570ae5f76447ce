"""blink_rescore_pending, blink_score_batch and shadow models on a real server."""

from __future__ import annotations

import json
import threading

import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb

from devenv.cluster import wait_for
from tests.fix_db import APP_USER, TRAINER_USER, insert_snapshots, install


def rescore(conn, **kwargs) -> dict:
    args = ", ".join(f"{k} => {v}" for k, v in kwargs.items())
    return conn.execute(f"SELECT blink_rescore_pending({args})").fetchone()[0]


def audits(conn, source: str | None = None) -> list[tuple]:
    where = "" if source is None else f"WHERE source = '{source}'"
    return conn.execute(
        "SELECT user_id, snapshot_id, model_id, probability_default, decision, risk_band,"
        f" reasons, source FROM blink.risk_score_audits {where} ORDER BY snapshot_id, model_id"
    ).fetchall()


def test_a_run_audits_every_user_once_with_four_reasons(scored_db, model_a):
    n = len(model_a.population.user_ids)
    with scored_db.connect() as conn:
        summary = rescore(conn, batch_size=250)
        assert summary["ran"] and summary["complete"] and summary["scored"] == n
        assert summary["batches"] == -(-n // 250)
        rows = audits(conn)
        assert rescore(conn)["scored"] == 0  # nothing pending: no duplicates
        assert len(audits(conn)) == n
        stored = conn.execute("SELECT a.id FROM blink.risk_score_audits a JOIN "
                              "blink.feature_store_snapshots s ON s.id = a.snapshot_id "
                              "WHERE a.features <> s.features").fetchall()
    assert stored == []  # each audit keeps the exact document it was scored from
    assert [r[0] for r in rows] == model_a.population.user_ids
    probabilities = np.array([r[3] for r in rows])
    expected = model_a.predict(model_a.population.features)
    assert np.abs(probabilities - expected).max() <= 1e-6
    assert all((r[4] == "declined") == (r[3] >= 0.2) for r in rows)
    assert {r[7] for r in rows} == {"rescore"}
    booster_contrib = model_a.booster.predict(model_a.population.features[:50],
                                              pred_contrib=True, num_threads=1)
    names = model_a.artifact.feature_names
    for row, phi in zip(rows[:50], booster_contrib, strict=True):
        reasons = row[6]
        assert len(reasons) == 4 and all(r["reason"] and r["code"] for r in reasons)
        # Exact TreeSHAP (the library's own): pred_contrib to rounding, 1e-9 at most.
        assert np.abs(np.array([r["shap"] for r in reasons])
                      - sorted(phi[:-1], reverse=True)[:4]).max() <= 1e-9
        assert all(r["shap"] == pytest.approx(phi[names.index(r["feature"])], abs=1e-9)
                   for r in reasons)


def test_new_snapshots_and_a_new_champion_make_users_pending(scored_db, model_a, model_b):
    docs = model_a.population.documents()
    with scored_db.connect() as conn:
        rescore(conn)
        insert_snapshots(conn, ["user-1", "user-2", "user-3"], [docs[10], docs[11], docs[12]])
        summary = rescore(conn)
        assert summary["scored"] == 3
        latest = conn.execute(
            "SELECT probability_default FROM blink.risk_score_audits WHERE user_id = 'user-2' "
            "ORDER BY snapshot_id DESC LIMIT 1").fetchone()[0]
        assert latest == pytest.approx(model_a.predict(model_a.population.features[11:12])[0],
                                       abs=1e-9)
        b_id = install(conn, model_b.artifact)
        assert rescore(conn)["scored"] == len(docs)
        by_b = conn.execute("SELECT count(*) FROM blink.risk_score_audits WHERE model_id = %s",
                            [b_id]).fetchone()[0]
        assert by_b == len(docs)
        # a rollback to model a finds its audits still valid: nothing to redo
        conn.execute("SELECT blink_rollback('test')")
        assert rescore(conn)["scored"] == 0


def test_bounded_runs_pick_up_where_the_last_one_stopped(scored_db, model_a):
    n = len(model_a.population.user_ids)
    with scored_db.connect() as conn:
        first = rescore(conn, max_users=500, batch_size=100)
        assert (first["scored"], first["complete"]) == (500, False)
        tiny = rescore(conn, max_seconds=1e-9)  # no batch starts after the time is up
        assert (tiny["scored"], tiny["complete"]) == (0, False)
        rest = rescore(conn, batch_size=100)
        assert (rest["scored"], rest["complete"]) == (n - 500, True)
        count = conn.execute("SELECT count(*), count(DISTINCT snapshot_id) "
                             "FROM blink.risk_score_audits").fetchone()
    assert count == (n, n)


def cursors(conn) -> list[tuple]:
    return conn.execute("SELECT model_id, workers, worker FROM blink.rescore_cursors "
                        "ORDER BY 1, 2, 3").fetchall()


def test_after_a_complete_run_the_next_reads_only_what_was_written_since(scored_db, model_a):
    docs = model_a.population.documents()
    with scored_db.connect() as conn:
        champion = conn.execute("SELECT model_id FROM blink_champion()").fetchone()[0]
        first = rescore(conn, max_users=500)
        assert first["full_scans"] == [champion] and not first["complete"]
        assert cursors(conn) == []  # cut short: the next run still reads every user
        rest = rescore(conn)
        assert rest["full_scans"] == [champion] and rest["complete"]
        assert cursors(conn) == [(champion, 1, 0)]
        # completed_at: when rescoring last caught up (a run cut short leaves it)
        completed = "SELECT completed_at FROM blink.rescore_cursors"
        conn.execute("UPDATE blink.rescore_cursors SET completed_at = '2000-01-01'")
        insert_snapshots(conn, ["user-1", "user-2"], docs[10:12])
        assert rescore(conn, max_users=1)["scored"] == 1
        assert conn.execute(completed).fetchone()[0].year == 2000
        assert rescore(conn)["scored"] == 1
        assert conn.execute(f"SELECT now() - ({completed}) < interval '1 minute'").fetchone()[0]
        idle = rescore(conn)
        assert (idle["scored"], idle["full_scans"], idle["complete"]) == (0, [], True)

        insert_snapshots(conn, ["user-1", "user-2", "user-3"], docs[13:16])
        # a writer's own written_xid (a copy of rows: NULL, or another server's) is replaced
        conn.execute("INSERT INTO blink.feature_store_snapshots (user_id, features, written_xid)"
                     " VALUES ('user-8', %s, NULL), ('user-9', %s, '3')",
                     [Jsonb(docs[16]), Jsonb(docs[17])])
        new = rescore(conn)
        assert (new["scored"], new["full_scans"]) == (5, [])
        # a cursor of another server's transactions (a restored dump) is not used
        conn.execute("UPDATE blink.rescore_cursors SET cluster_id = cluster_id + 1")
        assert rescore(conn)["full_scans"] == [champion]
        assert rescore(conn)["full_scans"] == []
        # A user's latest snapshot deleted: its older one (never scored) is the latest
        # again, and counts as written by the delete (a purge of older rows writes nothing).
        add_older = ("INSERT INTO blink.feature_store_snapshots (user_id, snapshot_at, features)"
                     " VALUES (%s, now() - %s::interval, %s) RETURNING id")
        latest_xid = ("SELECT written_xid::text FROM blink.feature_store_snapshots "
                      "WHERE id = (SELECT id FROM blink.latest_snapshot(%s))")
        insert_snapshots(conn, ["new-user"], docs[14:15])
        assert rescore(conn)["scored"] == 1
        older = conn.execute(add_older, ["new-user", "1 year", Jsonb(docs[15])]).fetchone()[0]
        oldest = conn.execute(add_older, ["new-user", "2 years", Jsonb(docs[16])]).fetchone()[0]
        assert rescore(conn)["scored"] == 0  # written, but not the latest: nothing to do
        before = conn.execute(latest_xid, ["new-user"]).fetchone()
        conn.execute("DELETE FROM blink.feature_store_snapshots WHERE id = %s", [oldest])
        assert conn.execute(latest_xid, ["new-user"]).fetchone() == before
        conn.execute("DELETE FROM blink.feature_store_snapshots WHERE id = "
                     "(SELECT id FROM blink.latest_snapshot('new-user'))")
        deleted = rescore(conn)
        assert (deleted["scored"], deleted["full_scans"]) == (1, [])
        assert last_audited(conn) == older
        # A change that writes no snapshot of its user is seen by the daily full scan: the
        # latest snapshot moved to another user, the user's older one is the latest again.
        insert_snapshots(conn, ["mover"], docs[17:18])
        assert rescore(conn)["scored"] == 1
        left = conn.execute(add_older, ["mover", "1 year", Jsonb(docs[18])]).fetchone()[0]
        assert rescore(conn)["scored"] == 0
        conn.execute("UPDATE blink.feature_store_snapshots SET user_id = 'elsewhere' WHERE id = "
                     "(SELECT id FROM blink.latest_snapshot('mover'))")
        assert rescore(conn)["scored"] == 0  # its audit still answers for that snapshot
        conn.execute("UPDATE blink.rescore_cursors SET swept_at = now() - interval '25 hours'")
        swept = rescore(conn)
        assert (swept["scored"], swept["full_scans"]) == (1, [champion])
        assert last_audited(conn) == left


def last_audited(conn) -> int:
    return conn.execute("SELECT snapshot_id FROM blink.risk_score_audits "
                        "ORDER BY id DESC LIMIT 1").fetchone()[0]


def test_a_snapshot_moved_to_a_later_time_is_rescored(scored_db, model_a):
    docs = model_a.population.documents()
    with scored_db.connect() as conn:
        rescore(conn)
        moved = conn.execute("INSERT INTO blink.feature_store_snapshots (user_id, snapshot_at,"
                             " features) VALUES ('user-7', now() - interval '1 year', %s) "
                             "RETURNING id", [Jsonb(docs[20])]).fetchone()[0]
        assert rescore(conn)["scored"] == 0
        conn.execute("UPDATE blink.feature_store_snapshots SET feature_vector = feature_vector")
        assert rescore(conn)["scored"] == 0  # a vector refresh moves nothing
        conn.execute("UPDATE blink.feature_store_snapshots SET snapshot_at = now() + "
                     "interval '1 day' WHERE id = %s", [moved])
        summary = rescore(conn)
        assert (summary["scored"], summary["full_scans"]) == (1, [])
        assert last_audited(conn) == moved


def test_a_snapshot_committed_after_a_run_looked_is_not_skipped(scored_db, model_a):
    """The cursor stops at the oldest transaction still running when a run looked, so a
    snapshot whose transaction began before and committed after a run is read next time."""
    docs = model_a.population.documents()
    with scored_db.connect(autocommit=False) as writer, scored_db.connect() as conn:
        rescore(conn)
        insert_snapshots(writer, ["user-5"], docs[30:31])  # written, not yet committed
        insert_snapshots(conn, ["user-6"], docs[31:32])  # a later transaction, committed
        summary = rescore(conn)
        assert summary["scored"] == 1 and summary["complete"]
        writer.commit()
        late = rescore(conn)
        assert (late["scored"], late["full_scans"]) == (1, [])
        users = [r[0] for r in conn.execute(
            "SELECT user_id FROM blink.risk_score_audits ORDER BY id DESC LIMIT 2")]
    assert users == ["user-5", "user-6"]


def test_each_share_and_model_keeps_its_own_cursor(scored_db, model_a, model_b):
    with scored_db.connect() as conn:
        a = conn.execute("SELECT model_id FROM blink_champion()").fetchone()[0]
        for k in range(2):
            rescore(conn, worker=k, workers=2)
        assert cursors(conn) == [(a, 2, 0), (a, 2, 1)]
        every = rescore(conn)  # a split of its own: no cursor yet, so every user
        assert (every["scored"], every["full_scans"]) == (0, [a])
        b = install(conn, model_b.artifact)
        summary = rescore(conn)  # a new champion has no cursor: every user is pending
        users = len(model_a.population.user_ids)  # the snapshots in scored_db
        assert (summary["scored"], summary["full_scans"]) == (users, [b])
        assert cursors(conn) == [(a, 1, 0), (a, 2, 0), (a, 2, 1), (b, 1, 0)]


def test_an_overlapping_run_returns_at_once(scored_db, model_a):
    n = len(model_a.population.user_ids)
    with scored_db.connect(autocommit=False) as first, scored_db.connect() as second:
        assert rescore(first)["scored"] == n  # not committed: still holds the lock
        summary = rescore(second)  # had it queued behind the first run, this would hang
        assert summary["ran"] is False and "in progress" in summary["reason"]
        first.commit()
        assert rescore(second)["scored"] == 0
        assert second.execute("SELECT count(*) FROM blink.risk_score_audits").fetchone()[0] == n


def shares(conn, workers: int) -> list[list[str]]:
    """The users of each worker of ``workers``, by the rule the runs use."""
    return [[r[0] for r in conn.execute(
        "SELECT user_id FROM blink.feature_store_snapshots "
        "WHERE blink.rescore_worker(user_id, %s) = %s ORDER BY id", [workers, k]).fetchall()]
        for k in range(workers)]


def test_workers_split_the_pending_users_and_score_them_exactly(scored_db, model_a):
    users = model_a.population.user_ids
    n = len(users)
    with scored_db.connect() as conn:
        split = shares(conn, 3)
        assert sorted(sum(split, [])) == sorted(users)  # each user in exactly one share
        # a hash, so near-equal shares: 4 binomial standard deviations from n / 3 at most
        assert all(abs(len(s) - n / 3) <= 4 * (n * 2 / 9) ** 0.5 for s in split)
        done: set[str] = set()
        for k in (2, 0, 1):
            summary = rescore(conn, worker=k, workers=3, batch_size=100)
            assert summary["ran"] and summary["complete"]
            assert (summary["worker"], summary["workers"]) == (k, 3)
            assert summary["scored"] == len(split[k])
            done |= set(split[k])  # this worker's users and nobody else's
            assert {r[0] for r in conn.execute(
                "SELECT user_id FROM blink.risk_score_audits").fetchall()} == done
        assert rescore(conn)["scored"] == 0  # every share done: nothing pending for anyone
        rows = audits(conn)
    assert [r[0] for r in rows] == users and {r[7] for r in rows} == {"rescore"}
    expected = model_a.predict(model_a.population.features)
    assert np.abs(np.array([r[3] for r in rows]) - expected).max() <= 1e-6


def test_workers_run_together_but_never_beside_a_run_of_every_user(scored_db, model_a):
    n = len(model_a.population.user_ids)
    with scored_db.connect(autocommit=False) as first, scored_db.connect() as second:
        split = shares(second, 2)
        assert rescore(first, worker=0, workers=2)["scored"] == len(split[0])  # not committed
        every = rescore(second)
        assert every["ran"] is False and "in progress" in every["reason"]
        twin = rescore(second, worker=0, workers=2)
        assert twin["ran"] is False and "worker 0 of 2" in twin["reason"]
        assert rescore(second, worker=1, workers=2)["scored"] == len(split[1])  # at once
        first.commit()
        assert rescore(first)["scored"] == 0  # first now holds the lock of every user
        blocked = rescore(second, worker=1, workers=2)
        assert blocked["ran"] is False and "a run of every user" in blocked["reason"]
        first.commit()
        counts = second.execute("SELECT count(*), count(DISTINCT snapshot_id) "
                                "FROM blink.risk_score_audits").fetchone()
    assert counts == (n, n)


def test_a_worker_outside_the_split_is_named(scored_db):
    with scored_db.connect() as conn:
        for args, message in [("worker => 2, workers => 2", "worker must be between 0 and "
                               r"workers - 1 \(1\), got 2"),
                              ("workers => 0", "workers must be between 1 and 64, got 0"),
                              ("worker => -1, workers => 4", "worker must be between 0")]:
            with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
                conn.execute(f"SELECT blink_rescore_pending({args})")
        assert conn.execute("SELECT count(*) FROM blink.risk_score_audits").fetchone()[0] == 0


def test_a_run_killed_halfway_keeps_nothing_and_the_next_run_does_it_all(scored_db, model_a):
    n = len(model_a.population.user_ids)
    outcome: dict = {}

    def run() -> None:
        try:
            with scored_db.connect() as conn:
                outcome["pid"] = conn.info.backend_pid
                outcome["summary"] = rescore(conn, batch_size=1)
        except psycopg.OperationalError as exc:
            outcome["error"] = exc

    with scored_db.connect() as watcher:
        worker = threading.Thread(target=run)
        worker.start()
        # Mid-run: the run's transaction has an xid, which it gets on its first INSERT, so at
        # least one batch of audits is written (and not committed) when we kill it.
        assert wait_for(lambda: "pid" in outcome and watcher.execute(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND locktype = 'transactionid')",
            [outcome["pid"]]).fetchone()[0], timeout=60, interval=0.01)
        assert watcher.execute("SELECT pg_terminate_backend(%s)", [outcome["pid"]]).fetchone()[0]
        worker.join(60)
        assert "error" in outcome and "summary" not in outcome  # it really died mid-run
        assert watcher.execute("SELECT count(*) FROM blink.risk_score_audits").fetchone()[0] == 0
        assert rescore(watcher)["scored"] == n
        counts = watcher.execute("SELECT count(*), count(DISTINCT (snapshot_id, model_id)) "
                                 "FROM blink.risk_score_audits").fetchone()
    assert counts == (n, n)


def test_shadow_models_are_audited_without_changing_decisions(scored_db, model_a, model_b):
    n = len(model_a.population.user_ids)
    with scored_db.connect() as conn:
        champion = conn.execute("SELECT model_id FROM blink_champion()").fetchone()[0]
        shadow = install(conn, model_b.artifact, promote=False)
    with scored_db.connect(TRAINER_USER) as trainer:
        assert trainer.execute("SELECT blink_shadow_add(%s, 'challenger')", [shadow]).fetchone()[0]
        assert not trainer.execute("SELECT blink_shadow_add(%s)", [shadow]).fetchone()[0]
        with pytest.raises(psycopg.errors.NoDataFound, match="no model with id 999"):
            trainer.execute("SELECT blink_shadow_add(999)")
    with scored_db.connect() as conn:
        summary = rescore(conn)
        assert summary["scored"] == n and summary["shadow_scored"] == {str(shadow): n}
        rows = audits(conn, "shadow")
        assert {r[2] for r in rows} == {shadow}
        got = np.array([r[3] for r in rows])
        assert np.abs(got - model_b.predict(model_a.population.features)).max() <= 1e-6
        assert all(len(r[6]) == 4 for r in rows)
        current = conn.execute("SELECT DISTINCT model_id, source FROM blink.current_decisions"
                               ).fetchall()
        assert current == [(champion, "rescore")]
        assert conn.execute("SELECT model_id FROM blink_champion()").fetchone()[0] == champion
        assert rescore(conn)["shadow_scored"] == {str(shadow): 0}
    with scored_db.connect(TRAINER_USER) as trainer:
        assert trainer.execute("SELECT blink_shadow_remove(%s)", [shadow]).fetchone()[0]
    with scored_db.connect() as conn:
        insert_snapshots(conn, ["user-5"], [model_a.population.documents()[6]])
        summary = rescore(conn)
        assert summary["scored"] == 1 and summary["shadow_scored"] == {}


def test_score_batch_matches_lightgbm_in_input_order(scored_db, model_a):
    users = model_a.population.user_ids
    asked = users[::-1] + ["nobody", None, users[3]]
    with scored_db.connect(APP_USER) as app:
        rows = app.execute("SELECT * FROM blink_score_batch(%s)", [asked]).fetchall()
        single = app.execute("SELECT blink_score(%s)", [users[3]]).fetchone()[0]
        assert app.execute("SELECT count(*) FROM blink_score_batch('{}')").fetchone()[0] == 0
    assert [r[0] for r in rows] == asked
    got = np.array([r[1] for r in rows[:len(users)]])[::-1]
    assert np.isnan(model_a.population.features).any()
    assert np.abs(got - model_a.predict(model_a.population.features)).max() <= 1e-6
    assert rows[-3][1:4] == (None, None, None) and rows[-2][1] is None
    assert rows[-1][1] == single
    assert all((r[2] == "declined") == (r[1] >= 0.2) for r in rows[:len(users)])


def test_unusual_values_score_like_blink_score_and_bad_ones_are_named(scored_db, model_a):
    doc = dict(model_a.population.documents()[0])
    huge = dict(doc, metric_total_balance=1e305)  # beyond what SQL converts: done in Python
    bad = dict(doc, metric_volatility90="high")
    with scored_db.connect() as conn:
        insert_snapshots(conn, ["odd-1", "odd-2"], [huge, bad])
        # beyond float8: the fast batch query fails on it and the batch is read again safely
        conn.execute("INSERT INTO blink.feature_store_snapshots (user_id, features) VALUES "
                     "('odd-3', '{\"metric_total_balance\": 1e400}')")
    with scored_db.connect(APP_USER) as app:
        one = app.execute("SELECT probability_default FROM blink_score_batch(ARRAY['odd-1'])"
                          ).fetchone()[0]
        assert one == pytest.approx(app.execute("SELECT blink_score('odd-1')").fetchone()[0],
                                    abs=1e-12)
        # A bad snapshot fails only its own user: NULL scores, its snapshot id, a WARNING.
        notices: list[str] = []
        app.add_notice_handler(lambda d: notices.append(d.message_primary))
        rows = app.execute("SELECT user_id, probability_default, decision, snapshot_id "
                           "FROM blink_score_batch(ARRAY['odd-1', 'odd-2'])").fetchall()
        assert rows[0][1] == pytest.approx(one, abs=1e-12)
        assert rows[1][0] == "odd-2" and rows[1][1:3] == (None, None) and rows[1][3] > 0
        assert any('feature "metric_volatility90"' in m and "odd-2" in m for m in notices)
        with pytest.raises(psycopg.errors.InvalidParameterValue,
                           match='^blink: feature "metric_volatility90" in snapshot'):
            app.execute("SELECT blink_score('odd-2')")
    with scored_db.connect() as conn:
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        summary = rescore(conn)
        assert summary["scored"] == len(model_a.population.user_ids) + 1
        assert summary["invalid_snapshots"] == summary["quarantined"] == 2
        assert any("metric_volatility90" in m and "odd-2" in m for m in notices), notices
        assert any("metric_total_balance" in m and "odd-3" in m for m in notices), notices
        users = {r[0] for r in audits(conn)}
        quarantined = conn.execute("SELECT user_id, error FROM blink.unscorable_snapshots "
                                   "ORDER BY user_id").fetchall()
        again = rescore(conn)  # quarantined rows are not tried again
        assert (again["scored"], again["invalid_snapshots"]) == (0, 0)
    assert "odd-1" in users and not {"odd-2", "odd-3"} & users
    assert [u for u, _ in quarantined] == ["odd-2", "odd-3"]
    assert "metric_volatility90" in quarantined[0][1] and "must be finite" in quarantined[1][1]
    with scored_db.connect(APP_USER) as app:
        row = app.execute("SELECT probability_default FROM blink_score_batch(ARRAY['odd-3'])"
                          ).fetchone()
        assert row == (None,)


def test_no_champion_is_a_quiet_run_and_only_the_owner_may_rescore(db, model_a):
    with db.connect() as conn:
        summary = rescore(conn)
    assert summary["ran"] and summary["scored"] == 0 and "no champion" in summary["reason"]
    with db.connect(APP_USER) as app:
        for sql in ("SELECT blink_rescore_pending()", "SELECT blink_schedule()",
                    "SELECT blink_unschedule()", "SELECT blink_shadow_add(1)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("UPDATE blink.reason_codes SET reason_text = 'x'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT * FROM blink.dblink('dbname=postgres', 'SELECT 1') AS t(x int)")
    with db.connect() as conn, pytest.raises(psycopg.errors.InvalidParameterValue,
                                             match="^blink: max_users must be a positive"):
        rescore(conn, max_users=0)


def test_summary_is_json_with_exact_counts(scored_db, model_a):
    with scored_db.connect() as conn:
        text = conn.execute("SELECT blink_rescore_pending(batch_size => 500)::text").fetchone()[0]
        champion = conn.execute("SELECT model_id FROM blink_champion()").fetchone()[0]
    summary = json.loads(text)
    users = len(model_a.population.user_ids)
    assert summary.pop("seconds") >= 0
    assert summary == {"ran": True, "champion_id": champion, "scored": users,
                       "shadow_scored": {}, "invalid_snapshots": 0, "quarantined": 0,
                       "batches": -(-users // 500), "complete": True, "worker": 0,
                       "workers": 1, "full_scans": [champion]}
