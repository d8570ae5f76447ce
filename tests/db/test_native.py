"""blink_native (db/native/blink_native.c): blink_score's tree call without PL/Python, on a
real server. It scores exactly as LightGBM, opens only blink's own library files, and leaves
to PL/Python whatever it cannot score: a missing file, another vector length, a transaction
that reads one snapshot throughout, a server without the module."""

from __future__ import annotations

import os

import numpy as np
import psycopg
import pytest

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
                             "WHERE oid = 'blink.native_score'::regproc").fetchone() == (
            "blink_native_score_v1", "blink_native")
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


def test_it_leaves_other_lengths_and_single_snapshot_transactions_to_python(scored_db,
                                                                           model_a):
    query = ("SELECT blink.native_score(blink.champion_library(), %s), "
             "blink.native_score(blink.champion_library(), s.feature_vector) "
             "FROM blink.latest_snapshot('user-1') s")
    expected = model_a.predict(model_a.population.features[1:2])[0]
    with scored_db.connect() as conn:
        conn.execute("SELECT blink_score('user-1')")  # the library file exists from here
        short, stored = conn.execute(query, [b"\x00" * 8]).fetchone()
        assert short is None and stored == pytest.approx(expected, abs=1e-9)
    with scored_db.connect(autocommit=False) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        assert conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
        assert conn.execute(query, [b"\x00" * 8]).fetchone() == (None, None)
        assert conn.execute("SELECT blink_score('user-1')").fetchone()[0] == pytest.approx(
            expected, abs=1e-9)
        assert python_scored(conn)


def test_it_opens_only_blinks_library_files_and_only_blink_calls_it(scored_db):
    with scored_db.connect() as conn:
        for name in ("/etc/passwd", "blink_libraries/1/../../../x.so", "libc.so.6",
                     "blink_libraries/1/" + "A" * 64 + ".so", "blink_libraries//" + "a" * 64):
            with pytest.raises(psycopg.errors.InvalidParameterValue,
                               match="loads only blink's model libraries"):
                conn.execute("SELECT blink.native_score(%s, '\\x00')", [name])
        # a well-formed name without a file: NULL (PL/Python's turn), no error
        assert conn.execute("SELECT blink.native_score(%s, '\\x00')",
                            ["blink_libraries/1/" + "a" * 64 + ".so"]).fetchone() == (None,)
    with scored_db.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT blink.native_score(blink.champion_library(), '\\x00')")


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
            assert conn.execute("SELECT blink.native_score(blink.champion_library(), "
                                "s.feature_vector) FROM blink.latest_snapshot('user-0') s"
                                ).fetchone() == (None,)
            assert np.array_equal(scores(conn, users), native)
            assert python_scored(conn)
    finally:
        with scored_db.connect() as conn:
            assert conn.execute("SELECT blink.define_native_score()").fetchone() == (True,)
    with scored_db.connect(APP_USER) as app:  # the privileges survive both redefinitions
        assert np.array_equal(scores(app, users), native)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT blink.native_score(blink.champion_library(), '\\x00')")
