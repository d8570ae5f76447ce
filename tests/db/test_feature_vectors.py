"""Stored feature vectors (db/idempotent/015_feature_vectors.sql) on a real server: the same
values pyfuncs.features builds, rebuilt on every write, and the JSON path wherever a vector
cannot serve, with the same scores."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from pyfuncs.features import FeatureSpec, parse_document
from tests.fix_db import APP_USER, insert_snapshots, install

TOLERANCE = 1e-9


def stored(conn, user_id: str) -> tuple[bytes | None, str | None]:
    row = conn.execute("SELECT s.feature_vector, s.feature_layout::text "
                       "FROM blink.latest_snapshot(%s) s", [user_id]).fetchone()
    return (None if row[0] is None else bytes(row[0])), row[1]


def decoded(vector: bytes) -> np.ndarray:
    return np.frombuffer(vector, dtype=">f8").astype(np.float64)


def test_every_vector_holds_what_python_builds_categories_included(db, model_cat):
    with db.connect() as conn:
        insert_snapshots(conn, model_cat.user_ids, model_cat.documents)
        install(conn, model_cat.artifact)
        rows = conn.execute("SELECT features::text, feature_vector, feature_layout::text "
                            "FROM blink.feature_store_snapshots").fetchall()
        (layout,) = conn.execute("SELECT feature_layout::text FROM blink.champion()").fetchone()
    spec = FeatureSpec(model_cat.artifact.feature_names, model_cat.artifact.feature_categories)
    assert len(rows) == len(model_cat.documents) and layout is not None
    for text, vector, row_layout in rows:
        expected = np.array(spec.vector(parse_document(text), allow_unknown=True, where=""))
        assert row_layout == layout
        assert vector is not None, text
        assert np.array_equal(decoded(bytes(vector)), expected, equal_nan=True), text


def test_snapshots_without_a_current_vector_score_from_json_alike(scored_db, model_a):
    users = model_a.population.user_ids[:400]
    expected = model_a.predict(model_a.population.features[:400])
    with scored_db.connect(APP_USER) as app:
        fast = np.array([app.execute("SELECT blink_score(%s)", [u]).fetchone()[0] for u in users])
    with scored_db.connect() as conn:  # as if written before this champion's layout existed
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "DISABLE TRIGGER feature_store_snapshots_vector")
        stale = conn.execute("UPDATE blink.feature_store_snapshots SET feature_layout = NULL "
                             "WHERE user_id = ANY(%s)", [users[::2]]).rowcount
        conn.execute("UPDATE blink.feature_store_snapshots SET feature_vector = NULL "
                     "WHERE user_id = ANY(%s)", [users[1::4]])
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "ENABLE TRIGGER feature_store_snapshots_vector")
        # The install's refresh marked this deployment done; stale rows are not expected
        # under it, so the refresh skips them until a new deployment (tested below).
        assert conn.execute("SELECT blink_refresh_feature_vectors()").fetchone()[0] == 0
        conn.execute("DELETE FROM blink.feature_vector_refreshes")
    with scored_db.connect(APP_USER) as app:
        slow = np.array([app.execute("SELECT blink_score(%s)", [u]).fetchone()[0] for u in users])
        batch = np.array([r[0] for r in app.execute(
            "SELECT probability_default FROM blink_score_batch(%s)", [users]).fetchall()])
    assert np.abs(fast - expected).max() <= 1e-6
    assert np.abs(slow - fast).max() <= 1e-12
    assert np.abs(batch - fast).max() <= 1e-12
    with scored_db.connect() as conn:
        assert conn.execute("SELECT blink_refresh_feature_vectors(100)").fetchone()[0] == 100
        rebuilt = conn.execute("SELECT blink_refresh_feature_vectors()").fetchone()[0]
        assert rebuilt == stale - 100
        assert conn.execute("SELECT blink_refresh_feature_vectors()").fetchone()[0] == 0
        assert all(stored(conn, u)[0] is not None for u in users[::2])
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="max_rows"):
            conn.execute("SELECT blink_refresh_feature_vectors(0)")


def test_scores_and_batches_read_the_vector_built_for_the_champions_layout(scored_db,
                                                                          model_a):
    # Give user-0 user-1's vector behind the trigger's back: whichever path reads the stored
    # vector then answers with user-1's score, and one that parsed the document would not.
    expected = model_a.predict(model_a.population.features[:2])
    with scored_db.connect() as conn:
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "DISABLE TRIGGER feature_store_snapshots_vector")
        conn.execute("UPDATE blink.feature_store_snapshots SET feature_vector = "
                     "(SELECT s.feature_vector FROM blink.latest_snapshot('user-1') s) "
                     "WHERE id = (SELECT s.id FROM blink.latest_snapshot('user-0') s)")
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "ENABLE TRIGGER feature_store_snapshots_vector")
    with scored_db.connect(APP_USER) as app:
        single = app.execute("SELECT blink_score('user-0')").fetchone()[0]
        batch = app.execute("SELECT probability_default FROM blink_score_batch("
                            "ARRAY['user-0'])").fetchone()[0]
    assert expected[0] != expected[1]
    assert single == pytest.approx(expected[1], abs=TOLERANCE)
    assert batch == pytest.approx(expected[1], abs=TOLERANCE)


def test_the_refresh_scans_once_per_deployment(scored_db, model_a):
    user = model_a.population.user_ids[0]
    with scored_db.connect() as conn:
        (done,) = conn.execute("SELECT count(*) FROM blink.feature_vector_refreshes r "
                               "JOIN blink.champion() c ON c.id = r.deployment_id").fetchone()
        assert done == 1  # the install's refresh finished this deployment
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "DISABLE TRIGGER feature_store_snapshots_vector")
        conn.execute("UPDATE blink.feature_store_snapshots SET feature_layout = NULL "
                     "WHERE user_id = %s", [user])
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "ENABLE TRIGGER feature_store_snapshots_vector")
        # Done for this deployment: no scan, the stale row stays (it still scores, from JSON).
        assert conn.execute("SELECT blink_refresh_feature_vectors()").fetchone()[0] == 0
        assert stored(conn, user)[1] is None
        # Any new deployment (a promotion, a rollback) scans again, once.
        conn.execute("INSERT INTO blink.blink_deployments (model_id, action, reason) "
                     "SELECT model_id, 'promote', 'test: a new deployment' FROM blink.champion()")
        assert conn.execute("SELECT blink_refresh_feature_vectors()").fetchone()[0] == 1
        (layout,) = conn.execute("SELECT feature_layout::text FROM blink.champion()").fetchone()
        assert stored(conn, user)[1] == layout
        assert conn.execute("SELECT blink_refresh_feature_vectors()").fetchone()[0] == 0
        (marks,) = conn.execute("SELECT count(*) FROM blink.feature_vector_refreshes").fetchone()
        assert marks == 2


def test_a_written_vector_is_always_rebuilt_from_the_document(scored_db, model_a):
    with scored_db.connect() as conn:
        before = stored(conn, "user-0")
        conn.execute("UPDATE blink.feature_store_snapshots SET feature_vector = '\\x00'::bytea, "
                     "feature_layout = gen_random_uuid() WHERE user_id = 'user-0'")
        assert stored(conn, "user-0") == before
        conn.execute("INSERT INTO blink.feature_store_snapshots "
                     "(user_id, features, feature_vector) VALUES ('user-0', %s, '\\x00'::bytea)",
                     [psycopg.types.json.Jsonb(model_a.population.documents()[1])])
        vector, _ = stored(conn, "user-0")
        # a new document rebuilds it; moving the row to another time keeps it (0014: the
        # vector is rebuilt when the document, the vector or its layout is written)
        conn.execute("UPDATE blink.feature_store_snapshots SET features = %s WHERE id = "
                     "(SELECT id FROM blink.latest_snapshot('user-0'))",
                     [psycopg.types.json.Jsonb(model_a.population.documents()[2])])
        rebuilt, _ = stored(conn, "user-0")
        latest = "WHERE id = (SELECT id FROM blink.latest_snapshot('user-0'))"
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "DISABLE TRIGGER feature_store_snapshots_vector")
        conn.execute(f"UPDATE blink.feature_store_snapshots SET feature_vector = NULL {latest}")
        conn.execute("ALTER TABLE blink.feature_store_snapshots "
                     "ENABLE TRIGGER feature_store_snapshots_vector")
        conn.execute("UPDATE blink.feature_store_snapshots SET snapshot_at = snapshot_at "
                     f"+ interval '1 second' {latest}")
        moved, _ = stored(conn, "user-0")  # not rebuilt: still the NULL set behind its back
    assert np.array_equal(decoded(vector), model_a.population.features[1], equal_nan=True)
    assert np.array_equal(decoded(rebuilt), model_a.population.features[2], equal_nan=True)
    assert moved is None


def test_values_sql_does_not_convert_leave_the_row_to_python(scored_db, model_a):
    docs = model_a.population.documents()
    name = model_a.artifact.feature_names[0]
    tiny = dict(docs[2], **{name: 1e-310})  # a subnormal: Python reads it, SQL leaves it
    wrong = dict(docs[3], **{name: "12"})  # a string for a number: Python's error
    with scored_db.connect() as conn:
        insert_snapshots(conn, ["user-tiny", "user-wrong"], [tiny, wrong])
        assert stored(conn, "user-tiny")[0] is None and stored(conn, "user-tiny")[1] is not None
        assert stored(conn, "user-wrong")[0] is None
    row = model_a.population.features[2:3].copy()
    row[0, 0] = 1e-310
    with scored_db.connect(APP_USER) as app:
        got = app.execute("SELECT blink_score('user-tiny')").fetchone()[0]
        assert got == pytest.approx(model_a.predict(row)[0], abs=TOLERANCE)
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=f'"{name}"'):
            app.execute("SELECT blink_score('user-wrong')")
