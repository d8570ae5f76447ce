"""blink_native (db/native/blink_native.c): blink_score in C, on a real server. It reads the
snapshot blink.latest_snapshot reads, scores exactly as LightGBM, opens only blink's own
library files, and leaves to PL/Python whatever it cannot score: a missing file, another
vector length, no snapshot, a transaction that reads one snapshot throughout, a server
without the module."""

from __future__ import annotations

import os

import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb

from pyfuncs import library_files
from tests.fix_db import APP_USER, install, library_file, python_scored, remove_as_server

USERS = 300


def scores(conn: psycopg.Connection, users: list[str]) -> np.ndarray:
    return np.array([conn.execute("SELECT blink_score(%s)", [u]).fetchone()[0] for u in users])


def test_the_module_is_loaded_and_scores_as_lightgbm_without_python(scored_db, model_a,
                                                                     model_b):
    users = model_a.population.user_ids[:USERS]
    expected = model_a.predict(model_a.population.features[:USERS])
    with scored_db.connect() as first:  # the server may not have the library file yet
        first.execute("SELECT blink_score(%s)", [users[0]])
        assert os.path.exists(library_file(first))
    with scored_db.connect() as owner:
        assert owner.execute("SELECT prosrc, probin FROM pg_proc "
                             "WHERE oid = 'blink.score_native'::regproc").fetchone() == (
            "blink_score_native_v2", "blink_native")
        got = scores(owner, users)
        assert not python_scored(owner)
        assert np.abs(got - expected).max() <= 1e-6
        with scored_db.connect() as other:  # a promotion, seen by this open session
            new_id = install(other, model_b.artifact)
        after = scores(owner, users[:50])
        assert not python_scored(owner)
        assert owner.execute("SELECT blink.champion_model_id()").fetchone()[0] == new_id
    assert np.abs(after - model_b.predict(model_a.population.features[:50])).max() <= 1e-6
    with scored_db.connect(APP_USER) as app:  # the application's role scores the same
        assert np.array_equal(scores(app, users[:50]), after)


def test_the_library_name_is_the_file_pyfuncs_writes(scored_db):
    with scored_db.connect() as conn:
        name, data_dir, oid, sha = conn.execute(
            "SELECT blink.champion_library(), current_setting('data_directory'), "
            "(SELECT oid FROM pg_database WHERE datname = current_database()), "
            "v.compiled_lib_sha256 FROM blink.vetted_models v "
            "WHERE v.model_id = blink.champion_model_id()").fetchone()
    written = library_files.library_path(library_files.directory_in(data_dir, oid), sha)
    assert written is not None and os.path.join(data_dir, name) == written


def test_a_missing_file_is_scored_by_python_which_writes_it_again(scored_db, model_a):
    users = model_a.population.user_ids[:20]
    expected = model_a.predict(model_a.population.features[:20])
    with scored_db.connect() as conn:
        conn.execute("SELECT blink_score(%s)", [users[0]])
        path = library_file(conn)
        remove_as_server(conn, path)
    with scored_db.connect() as conn:
        got = scores(conn, users)
        assert python_scored(conn) and os.path.exists(path)
    with scored_db.connect() as conn:
        again = scores(conn, users)
        assert not python_scored(conn)
    assert np.abs(got - expected).max() <= 1e-6 and np.array_equal(got, again)


def test_it_reads_the_snapshot_latest_snapshot_reads(scored_db, model_a):
    # Ties on snapshot_at (the higher id wins) and a late insert of an older snapshot.
    docs = model_a.population.documents()
    with scored_db.connect() as conn:
        conn.execute("SELECT blink_score('user-1')")  # the library file exists from here
        for user, older, newer in (("user-1", 7, 8), ("user-2", 9, 10)):
            conn.execute("INSERT INTO blink.feature_store_snapshots (user_id, snapshot_at, "
                         "features) VALUES (%s, '2030-01-01', %s), (%s, '2030-01-01', %s)",
                         [user, Jsonb(docs[older]), user, Jsonb(docs[newer])])
        conn.execute("INSERT INTO blink.feature_store_snapshots (user_id, snapshot_at, "
                     "features) VALUES ('user-2', '2029-01-01', %s)", [Jsonb(docs[11])])
        got = [conn.execute("SELECT blink.score_native(%s), blink_score(%s)", [u, u]).fetchone()
               for u in ("user-1", "user-2")]
        assert not python_scored(conn)
    expected = model_a.predict(model_a.population.features[[8, 10]])
    assert np.abs(np.array(got) - expected[:, None]).max() <= 1e-9


def test_it_leaves_other_lengths_and_single_snapshot_transactions_to_python(scored_db,
                                                                           model_a):
    expected = model_a.predict(model_a.population.features[1:3])
    with scored_db.connect() as conn:
        conn.execute("SELECT blink_score('user-1')")  # the library file exists from here
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "DISABLE TRIGGER feature_store_snapshots_vector")
        conn.execute("UPDATE blink.feature_store_snapshots SET feature_vector = '\\x00' "
                     "WHERE user_id = 'user-2'")
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "ENABLE TRIGGER feature_store_snapshots_vector")
        assert conn.execute("SELECT blink.score_native('user-2'), "
                            "blink.score_native('no-such-user')").fetchone() == (None, None)
        with pytest.raises(psycopg.errors.DataCorrupted, match="stored feature vector of 1 "):
            conn.execute("SELECT blink_score('user-2')")
        assert conn.execute("SELECT blink_score('no-such-user')").fetchone() == (None,)
    with scored_db.connect(autocommit=False) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        assert conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
        assert conn.execute("SELECT blink.score_native('user-1')").fetchone() == (None,)
        assert conn.execute("SELECT blink_score('user-1')").fetchone()[0] == pytest.approx(
            expected[0], abs=1e-9)
        assert python_scored(conn)


def test_it_opens_only_blinks_library_files_and_applications_only_score(scored_db):
    with scored_db.connect() as conn:
        conn.execute("SELECT blink_score('user-1')")
        for name in ("/etc/passwd", "blink_libraries/1/../../../x.so", "libc.so.6",
                     "blink_libraries/1/" + "A" * 64 + ".so", "blink_libraries//" + "a" * 64):
            # A constant changed behind blink's back (only a superuser can): refused.
            conn.execute("CREATE OR REPLACE FUNCTION blink.champion_library() RETURNS text "
                         "LANGUAGE sql STABLE AS " + psycopg.sql.quote(f"SELECT '{name}'"))
            with pytest.raises(psycopg.errors.InvalidParameterValue,
                               match="not a blink model library"):
                conn.execute("SELECT blink_score('user-1')")
        conn.execute("SELECT blink.define_champion_constants()")
        assert conn.execute("SELECT blink_score('user-1')").fetchone()[0] is not None
    with scored_db.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT * FROM blink.feature_store_snapshots LIMIT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT blink.score_snapshot(1, 'user-1', 1, NULL, '{}')")
        # It may call blink_score's C half itself: that answers what blink_score answers.
        assert app.execute("SELECT blink.score_native('user-1') = blink_score('user-1')"
                           ).fetchone() == (True,)


def test_a_server_without_the_module_scores_through_python(scored_db, model_a):
    users = model_a.population.user_ids[:20]
    with scored_db.connect() as conn:
        native = scores(conn, users)
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        assert conn.execute("SELECT blink.define_native_score('blink_native_absent')"
                            ).fetchone() == (False,)
        assert any("blink_native_absent cannot be loaded" in n for n in notices), notices
    try:
        with scored_db.connect() as conn:
            assert conn.execute("SELECT blink.score_native('user-0')").fetchone() == (None,)
            assert np.array_equal(scores(conn, users), native)
            assert python_scored(conn)
    finally:
        with scored_db.connect() as conn:
            assert conn.execute("SELECT blink.define_native_score()").fetchone() == (True,)
    with scored_db.connect(APP_USER) as app:  # the privileges survive both redefinitions
        assert np.array_equal(scores(app, users), native)


def test_an_index_of_another_shape_sends_every_call_to_score_user(scored_db, model_a):
    expected = model_a.predict(model_a.population.features[1:2])[0]
    with scored_db.connect() as conn:
        conn.execute("SELECT blink_score('user-1')")
        assert conn.execute("SELECT blink.score_native('user-1')").fetchone()[0] is not None
        conn.execute("DROP INDEX blink.feature_store_snapshots_user_latest")
        conn.execute("CREATE INDEX feature_store_snapshots_user_latest "
                     "ON blink.feature_store_snapshots (user_id, snapshot_at, id)")
    with scored_db.connect() as conn:  # ascending: its first entry is the oldest snapshot
        assert conn.execute("SELECT blink.score_native('user-1')").fetchone() == (None,)
        assert conn.execute("SELECT blink_score('user-1')").fetchone()[0] == pytest.approx(
            expected, abs=1e-9)


def test_a_session_follows_the_table_and_index_changing_under_it(scored_db, model_a):
    # blink_native keeps the table and index it found until PostgreSQL invalidates either:
    # every change below, made by another session or inside this one's own transaction,
    # reaches the next call of the session that kept them.
    expected = model_a.predict(model_a.population.features[1:2])[0]
    native = "SELECT blink.score_native('user-1')"
    index = ("CREATE INDEX feature_store_snapshots_user_latest ON blink.feature_store_snapshots "
             "(user_id, snapshot_at {0}, id {0})")
    with scored_db.connect() as kept, scored_db.connect() as other:
        assert kept.execute(native).fetchone()[0] == pytest.approx(expected, abs=1e-9)
        other.execute("DROP INDEX blink.feature_store_snapshots_user_latest")
        other.execute(index.format("ASC"))  # its first entry is the oldest snapshot
        assert kept.execute(native).fetchone() == (None,)
        other.execute("DROP INDEX blink.feature_store_snapshots_user_latest")
        other.execute(index.format("DESC"))
        assert kept.execute(native).fetchone()[0] == pytest.approx(expected, abs=1e-9)
        other.execute("ALTER TABLE blink.feature_store_snapshots RENAME TO moved")
        assert kept.execute(native).fetchone() == (None,)
        other.execute("ALTER TABLE blink.moved RENAME TO feature_store_snapshots")
        assert kept.execute(native).fetchone()[0] == pytest.approx(expected, abs=1e-9)
        with kept.transaction(force_rollback=True):
            kept.execute("DROP INDEX blink.feature_store_snapshots_user_latest")
            assert kept.execute(native).fetchone() == (None,)
        assert kept.execute(native).fetchone()[0] == pytest.approx(expected, abs=1e-9)
