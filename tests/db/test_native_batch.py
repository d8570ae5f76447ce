"""blink_score_batch in C (blink_native's blink.score_batch), on a real server. It scores as
LightGBM, decides and bands exactly as pyfuncs.decision at the policy's own boundaries,
hands PL/Python the elements it cannot score within the same call, and the whole batch when
it cannot take it, and never mixes two models in one call."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb

from pyfuncs.decision import DecisionPolicy
from tests.fix_db import APP_USER, install, python_scored, remove_as_server

USERS = 300
CONSTANTS = ("champion_model_id", "champion_layout", "champion_library", "champion_policy")


def batch(conn: psycopg.Connection, users: list[str | None]) -> list[tuple]:
    return conn.execute("SELECT * FROM blink_score_batch(%s)", [users]).fetchall()


def python_answers(conn: psycopg.Connection, users: list[str]) -> dict[str, tuple]:
    """blink_decide's (PL/Python) probability, decision, band, model and snapshot per user."""
    return {u: conn.execute("SELECT probability_default, decision, risk_band, model_id, "
                            "snapshot_id, snapshot_at FROM blink_decide(%s)", [u]).fetchone()
            for u in users}


def warm(db) -> None:
    """A session that writes the champion's library file (a new server may not have it)."""
    with db.connect() as conn:
        conn.execute("SELECT blink_score('user-0')")


def test_the_batch_is_scored_in_c_as_lightgbm_in_input_order(scored_db, model_a):
    users = model_a.population.user_ids[:USERS]
    asked = users[::-1] + [None, "no-such-user", users[3]]
    warm(scored_db)
    with scored_db.connect() as conn:
        rows = batch(conn, asked)
        assert not python_scored(conn)
        expected = python_answers(conn, users)
        champion = conn.execute("SELECT blink.champion_model_id()").fetchone()[0]
    assert [r[0] for r in rows] == asked
    got = np.array([r[1] for r in rows[:USERS]])[::-1]
    assert np.abs(got - model_a.predict(model_a.population.features[:USERS])).max() <= 1e-6
    for user, row in zip(asked[:USERS], rows, strict=False):
        p, decision, band, model_id, snapshot_id, snapshot_at = expected[user]
        assert row[1] == pytest.approx(p, abs=1e-12)
        assert row[2:] == (decision, band, model_id, snapshot_id, snapshot_at)
    assert rows[USERS] == (None, None, None, None, champion, None, None)
    assert rows[USERS + 1] == ("no-such-user", None, None, None, champion, None, None)
    assert rows[-1] == rows[USERS - 1 - 3]  # a duplicate: the same answer
    with scored_db.connect(APP_USER) as app:  # the application's role gets the same rows
        assert batch(app, asked) == rows
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT * FROM blink.feature_store_snapshots LIMIT 1")


def test_it_decides_at_the_policys_own_boundaries_as_python(scored_db, model_a):
    users = model_a.population.user_ids[:USERS]
    warm(scored_db)
    with scored_db.connect() as conn:
        p = sorted({r[1] for r in batch(conn, users)})
    # Bounds and threshold equal to scores the server computes: every comparison is tested
    # on equality, where "<=" against "<" (or ">=" against ">") would differ.
    bounds = [p[40], p[90], p[150], p[220], 1.0]
    threshold = p[150]
    artifact = dataclasses.replace(
        model_a.artifact, version="test-a-boundaries", decision_threshold=threshold,
        risk_bands=[{"band": f"band-{i}", "max_probability": b} for i, b in enumerate(bounds)])
    policy = DecisionPolicy.from_model(threshold, artifact.risk_bands)
    with scored_db.connect() as conn:
        install(conn, artifact)
    warm(scored_db)
    with scored_db.connect() as conn:
        rows = batch(conn, users)
        assert not python_scored(conn)
        by_score = {r[1]: r[2:4] for r in rows}
        assert {by_score[b] for b in bounds[:-1]} == {
            ("approved", "band-0"), ("approved", "band-1"), ("declined", "band-2"),
            ("declined", "band-3")}
        assert all(r[2:4] == policy.decide(r[1]) for r in rows)
        on_the_edges = [r[0] for r in rows if r[1] in bounds]
        assert len(on_the_edges) >= 4
        python = python_answers(conn, on_the_edges)
    assert all(python[r[0]][1:3] == r[2:4] for r in rows if r[0] in python)


def test_elements_c_cannot_score_are_scored_by_python_in_the_same_call(scored_db, model_a):
    users = model_a.population.user_ids[:40]
    bad = dict(model_a.population.documents()[5], metric_volatility90="high")
    warm(scored_db)
    with scored_db.connect() as conn:
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "DISABLE TRIGGER feature_store_snapshots_vector")
        # No vector (from its document), another length (from its document too), and a
        # document PL/Python refuses: only these three go to PL/Python.
        conn.execute("UPDATE blink.feature_store_snapshots SET feature_vector = NULL "
                     "WHERE user_id = 'user-1'")
        conn.execute("UPDATE blink.feature_store_snapshots SET feature_vector = '\\x00' "
                     "WHERE user_id = 'user-2'")
        conn.execute("UPDATE blink.feature_store_snapshots SET feature_vector = NULL, "
                     "features = %s WHERE user_id = 'user-5'", [Jsonb(bad)])
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "ENABLE TRIGGER feature_store_snapshots_vector")
    with scored_db.connect() as conn:
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        rows = batch(conn, users + ["user-1"])
        assert python_scored(conn)
    with scored_db.connect(APP_USER) as app:
        assert batch(app, users + ["user-1"]) == rows
    expected = model_a.predict(model_a.population.features[:40])
    got = np.array([np.nan if r[1] is None else r[1] for r in rows[:40]])
    valid = np.arange(40) != 5
    assert np.abs(got[valid] - expected[valid]).max() <= 1e-6
    assert rows[5][1:4] == (None, None, None) and rows[5][5] is not None
    assert rows[-1] == rows[1]
    assert len(notices) == 1 and "1 snapshot(s) left unscored" in notices[0]
    assert 'metric_volatility90' in notices[0] and "user-5" in notices[0]


def test_a_batch_c_cannot_take_is_scored_by_python_whole(scored_db, model_a):
    users = model_a.population.user_ids[:30] + [None, "no-such-user"]
    warm(scored_db)
    with scored_db.connect() as conn:
        native = batch(conn, users)
        assert not python_scored(conn)
        path = conn.execute("SELECT current_setting('data_directory') || '/' || "
                            "blink.champion_library()").fetchone()[0]
    with scored_db.connect(autocommit=False) as conn:  # one snapshot for the whole transaction
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        assert same_rows(batch(conn, users), native) and python_scored(conn)
        conn.rollback()
    with scored_db.connect() as conn:  # a policy constant without its numbers (by hand)
        conn.execute("CREATE OR REPLACE FUNCTION blink.champion_policy(OUT decision_threshold "
                     "float8, OUT band_bounds float8[], OUT band_names text[]) LANGUAGE sql "
                     "STABLE AS 'SELECT 0.2::float8, NULL::float8[], NULL::text[]'")
        assert same_rows(batch(conn, users), native) and python_scored(conn)
        conn.execute("SELECT blink.define_champion_constants()")
    with scored_db.connect() as conn:  # the library file not on this server (yet)
        remove_as_server(conn, path)
    with scored_db.connect() as conn:
        assert same_rows(batch(conn, users), native) and python_scored(conn)
    with scored_db.connect() as conn:
        assert conn.execute("SELECT blink.define_native_score('blink_native_absent')"
                            ).fetchone() == (False,)
    with scored_db.connect(APP_USER) as app:  # a server without the module
        assert same_rows(batch(app, users), native)
        assert app.execute("SELECT l.lanname FROM pg_proc p JOIN pg_language l "
                           "ON l.oid = p.prolang WHERE p.oid = 'public.blink_score_batch'::regproc"
                           ).fetchone() == ("plpgsql",)
    with scored_db.connect() as conn:
        assert conn.execute("SELECT blink.define_native_score()").fetchone() == (True,)
        assert same_rows(batch(conn, users), native) and not python_scored(conn)


def same_rows(got: list[tuple], expected: list[tuple]) -> bool:
    """Equal rows, probabilities within 1e-12 (PL/Python and C run the same library)."""
    def key(row: tuple) -> tuple:
        return row[:1] + row[2:]
    return len(got) == len(expected) and all(
        key(a) == key(b) and (a[1] is None) == (b[1] is None)
        and (a[1] is None or abs(a[1] - b[1]) <= 1e-12) for a, b in zip(got, expected,
                                                                           strict=True))


def test_one_call_never_mixes_two_models(scored_db, model_a, model_b):
    # C reads the champion from the plan constants, PL/Python from blink_deployments. Left
    # behind by a deployment that lands between the two halves, C's answers are thrown
    # away and PL/Python scores the whole batch with the champion it sees.
    users = model_a.population.user_ids[:30]
    warm(scored_db)
    with scored_db.connect() as conn:
        stale = [conn.execute("SELECT pg_get_functiondef(%s::regproc)",
                              [f"blink.{name}"]).fetchone()[0] for name in CONSTANTS]
        new_id = install(conn, model_b.artifact)
        for definition in stale:  # the constants as they were before the promotion
            conn.execute(definition)
        old_id, old_file = conn.execute(
            "SELECT blink.champion_model_id(), current_setting('data_directory') || '/' || "
            "blink.champion_library()").fetchone()
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "DISABLE TRIGGER feature_store_snapshots_vector")
        conn.execute("UPDATE blink.feature_store_snapshots SET feature_vector = NULL "
                     "WHERE user_id = 'user-1'")  # C leaves user-1 to PL/Python
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "ENABLE TRIGGER feature_store_snapshots_vector")
    assert old_id != new_id and os.path.exists(old_file)  # C could score with the old model
    with scored_db.connect() as conn:
        rows = batch(conn, users)
    assert {r[4] for r in rows} == {new_id}
    got = np.array([r[1] for r in rows])
    assert np.abs(got - model_b.predict(model_a.population.features[:30])).max() <= 1e-6


# Ids the batch's sort must order as the index does (bytes): equal in the 8 bytes after the
# common prefix "user-" and told apart after them, a proper prefix of another, and bytes
# above 0x7f (UTF-8), which sort after every ASCII byte.
BYTE_ORDER_IDS = ["user-000000000002", "user-000000000001", "user-0000000000010",
                  "user-00000000", "user-\u00e9", "user-\u00ff", "user-~"]


def debug_messages(conn: psycopg.Connection) -> list[str]:
    """The session's DEBUG1 messages from now on (which way blink_native read a batch)."""
    messages: list[str] = []
    conn.add_notice_handler(lambda d: messages.append(d.message_primary or ""))
    conn.execute("SET client_min_messages = debug1")
    return messages


def test_a_dense_batch_reads_the_table_or_walks_the_index_and_finds_what_lookups_find(
        scored_db, model_a):
    # A batch with an id for most snapshots reads the table once (blink_native.c, scan_batch)
    # or, with enable_seqscan off, walks the index in its order of ids (Walk). Each case below
    # is one both must answer as a lookup from the root does: a newer snapshot (the latest,
    # not the first inserted), a newest snapshot deleted and one rolled back (rows the
    # snapshot cannot see, the older one answers), ids with no snapshot before, between and
    # after the stored ones, repeated ids, NULLs, and a gap longer than the walk steps over
    # (WALK_STEPS), where it looks the next id up from the root. A sparse batch of the same
    # ids looks each up from the root, with the same answers.
    users = model_a.population.user_ids
    docs = model_a.population.documents()
    features = model_a.population.features
    warm(scored_db)
    with scored_db.connect() as conn:
        add = "INSERT INTO blink.feature_store_snapshots (user_id, features) VALUES (%s, %s)"
        conn.execute(add, [users[7], Jsonb(docs[8])])
        conn.execute(add, [users[9], Jsonb(docs[10])])
        conn.execute("DELETE FROM blink.feature_store_snapshots WHERE id = "
                     "(SELECT max(id) FROM blink.feature_store_snapshots WHERE user_id = %s)",
                     [users[9]])
        with conn.transaction(force_rollback=True):
            conn.execute(add, [users[11], Jsonb(docs[12])])
        for k, user in enumerate(BYTE_ORDER_IDS):
            conn.execute(add, [user, Jsonb(docs[20 + k])])
        conn.execute("ANALYZE blink.feature_store_snapshots")  # both read its row count
        stored = conn.execute("SELECT array_agg(u ORDER BY u) FROM unnest(%s::text[]) u",
                              [users]).fetchone()[0]
    # Most ids, with a stretch of every 25th (gaps of 24 users), shuffled: the walk sorts.
    asked: list[str | None] = stored[:500] + stored[500:900:25] + stored[900:] + [
        stored[5], stored[5], *users[7:12:2], "user-1x", "a", "zzz", None, None,
        *BYTE_ORDER_IDS, "user-0000000000011"]
    np.random.default_rng(3).shuffle(asked)
    sparse = [u for u in asked[:60] if u is not None]
    with scored_db.connect() as conn:
        debug = debug_messages(conn)
        scanned = batch(conn, asked)
        # the same ids but "a" and "zzz": all share "user-", which the walk's sort keys skip
        same_prefix = batch(conn, [u for u in asked if u is None or u.startswith("user-")])
        scans = sum("reads the table" in m for m in debug)
        conn.execute("SET enable_seqscan = off")
        walked = batch(conn, asked)
        walked_same_prefix = batch(conn, [u for u in asked if u is None or u.startswith("user-")])
        walks = sum("walks the index" in m for m in debug)
        # the sparse ids padded with NULLs: dense only by its NULLs, which neither way
        # counts (blink_native.c, batch_ids), so it looks its ids up from the root
        padded_walk = batch(conn, sparse + [None] * len(stored))
        conn.execute("RESET enable_seqscan")
        looked_up = batch(conn, sparse)
        padded = batch(conn, sparse + [None] * len(stored))
        conn.execute("RESET client_min_messages")
        assert not python_scored(conn)
        expected = python_answers(conn, [u for u in asked if u is not None])
    assert scans == 2 and walks == 2  # and the sparse batch neither:
    assert sum("reads the table" in m or "walks the index" in m for m in debug) == 4
    assert walked == scanned and walked_same_prefix == same_prefix
    assert [r[0] for r in scanned] == asked
    by_user = {r[0]: r for r in scanned}
    assert same_prefix == [r for r in scanned if r[0] is None or r[0].startswith("user-")]
    assert looked_up == [by_user[u] for u in sparse]
    assert padded_walk == padded and padded[:len(sparse)] == looked_up
    assert {(r[0], r[1]) for r in padded[len(sparse):]} == {(None, None)}
    for row in scanned:
        if row[0] is None or expected[row[0]] is None:  # no snapshot: blink_decide has no row
            assert row[1:4] + row[5:] == (None,) * 5
            continue
        p, decision, band, model_id, snapshot_id, snapshot_at = expected[row[0]]
        assert row[1] == pytest.approx(p, abs=1e-12)
        assert row[2:] == (decision, band, model_id, snapshot_id, snapshot_at)
    for user, own in ((users[7], 8), (users[9], 9), (users[11], 11)):
        assert by_user[user][1] == pytest.approx(model_a.predict(features[own:own + 1])[0],
                                                 abs=1e-6)
    assert [by_user[u][1] for u in ("user-1x", "a", "zzz")] == [None, None, None]


# Each user's rows in the order they are written (and found in the table, checked): how
# many days from now each snapshot is dated, and whether it has a vector C scores.
ROW_ORDERS = {
    1: ((+1, True), (-1, True)),    # the latest first: the older row met later loses
    3: ((-1, True), (+1, True)),    # the latest last: it wins, both were queued
    5: ((-1, True), (+1, False)),   # an older vector answered, then a latest C cannot score
    7: ((-1, False), (+1, True)),   # an older one C cannot score, then a scorable latest
    9: ((+1, False), (-1, True)),   # a latest C cannot score, then an older scorable one
    11: ((-1, True), (+1, False)),  # an older vector queued, then a latest C cannot score
}
FILLERS = 10


def test_the_table_read_keeps_each_users_latest_snapshot_in_any_row_order(scored_db, model_a):
    # Reading the table, a user's rows come in the table's order, not by time. The latest
    # snapshot of each user of ROW_ORDERS is a copy of the next user's, so its answer shows
    # which row won: C scores it, or PL/Python in the same call when its vector is not one
    # C scores.
    users = model_a.population.user_ids
    features = model_a.population.features
    warm(scored_db)
    with scored_db.connect() as conn:
        conn.execute("DELETE FROM blink.feature_store_snapshots WHERE user_id = ANY(%s)",
                     [[users[k] for k in ROW_ORDERS]])
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "DISABLE TRIGGER feature_store_snapshots_vector")
        # Copies of another user's row; one C cannot score says its vector is of another
        # layout, so every row has the same size and the inserts fill the table in order.
        # Between user 5's two rows come newer snapshots of FILLERS other users, so the
        # queue of vectors fills and the trees answer user 5's older one mid-read.
        inserts = [(k, days, scorable, k + 1 if days > 0 else k + 20)
                   for k, rows in ROW_ORDERS.items() for days, scorable in rows]
        at = inserts.index((5, -1, True, 25)) + 1
        inserts[at:at] = [(j, 0.5, True, j) for j in range(40, 40 + FILLERS)]
        for k, days, scorable, source in inserts:
            conn.execute(
                "INSERT INTO blink.feature_store_snapshots (user_id, snapshot_at, features,"
                " feature_vector, feature_layout) SELECT %s, now() + %s * interval '1 day',"
                " features, feature_vector,"
                " CASE WHEN %s THEN feature_layout ELSE gen_random_uuid() END"
                " FROM blink.feature_store_snapshots WHERE user_id = %s"
                " ORDER BY snapshot_at LIMIT 1", [users[k], days, scorable, users[source]])
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "ENABLE TRIGGER feature_store_snapshots_vector")
        conn.execute("ANALYZE blink.feature_store_snapshots")
        for k, rows in ROW_ORDERS.items():  # the premise: the table holds them in this order
            found = conn.execute("SELECT array_agg(snapshot_at > now() ORDER BY ctid), "
                                 "array_agg(feature_layout = blink.champion_layout() "
                                 "ORDER BY ctid) "
                                 "FROM blink.feature_store_snapshots WHERE user_id = %s",
                                 [users[k]]).fetchone()
            assert found == ([d > 0 for d, _ in rows], [v for _, v in rows])
        assert conn.execute(  # and the fillers between user 5's rows
            "SELECT array_agg(user_id = %s ORDER BY ctid) FROM blink.feature_store_snapshots "
            "WHERE user_id = %s OR user_id = ANY(%s) AND snapshot_at > now()",
            [users[5], users[5], users[40:40 + FILLERS]]).fetchone()[0] == [
                True, *[False] * FILLERS, True]
    asked = users[:12]
    with scored_db.connect() as conn:
        looked_up = batch(conn, asked)  # sparse: each from the index's root
    with scored_db.connect() as conn:
        debug = debug_messages(conn)
        everyone = conn.execute("SELECT array_agg(DISTINCT user_id) "
                                "FROM blink.feature_store_snapshots").fetchone()[0]
        scanned = {r[0]: r for r in batch(conn, everyone)}
        assert sum("reads the table" in m for m in debug) == 1
        assert python_scored(conn)  # the latest snapshots of another layout
        expected = python_answers(conn, asked)
    assert [scanned[u] for u in asked] == looked_up
    for user, row in zip(asked, looked_up, strict=True):
        p, decision, band, model_id, snapshot_id, snapshot_at = expected[user]
        assert row[1] == pytest.approx(p, abs=1e-12)
        assert row[2:] == (decision, band, model_id, snapshot_id, snapshot_at)
    for k in ROW_ORDERS:
        assert scanned[users[k]][1] == pytest.approx(
            model_a.predict(features[k + 1:k + 2])[0], abs=1e-6)


def test_the_previous_versions_entry_point_still_answers(scored_db, model_a):
    # Until an upgrade redefines them, the functions of the previous version call the C
    # half its SQL blink_score_batch wrapped (blink_score_batch_v1), in the module a DBA
    # installed first (docs/native.md).
    users = model_a.population.user_ids[:50] + [None, "no-such-user"]
    warm(scored_db)
    with scored_db.connect() as conn, conn.transaction(force_rollback=True):
        conn.execute("CREATE FUNCTION blink.score_batch(user_ids text[]) RETURNS TABLE ("
                     "user_id text, probability_default double precision, decision text, "
                     "risk_band text, model_id bigint, snapshot_id bigint, "
                     "snapshot_at timestamptz) LANGUAGE c STABLE STRICT "
                     "AS 'blink_native', 'blink_score_batch_v1'")
        old = conn.execute("SELECT * FROM blink.score_batch(%s)", [users]).fetchall()
        assert old == batch(conn, users) and not python_scored(conn)
        assert sum(r[1] is not None for r in old) == 50
