"""blink_score / blink_decide / blink_score_features on a real server, as the app role."""

from __future__ import annotations

import math

import numpy as np
import psycopg
import pytest

from tests.fix_db import APP_USER, insert_snapshots


def test_blink_score_matches_lightgbm_on_1000_users(scored_db, model_a):
    users = model_a.population.user_ids[:1000]
    expected = model_a.predict(model_a.population.features[:1000])
    with scored_db.connect(APP_USER) as app:
        got = np.array([app.execute("SELECT blink_score(%s)", [u]).fetchone()[0] for u in users])
    assert np.isnan(model_a.population.features[:1000]).any()  # missing values are exercised
    assert np.abs(got - expected).max() <= 1e-6


def test_latest_snapshot_wins(scored_db, model_a):
    docs = model_a.population.documents()
    with scored_db.connect() as conn:
        conn.execute(
            "INSERT INTO blink.feature_store_snapshots (user_id, snapshot_at, features) VALUES"
            " ('user-0', now() - interval '1 day', %s)", [psycopg.types.json.Jsonb(docs[1])])
    with scored_db.connect(APP_USER) as app:
        # The older snapshot inserted later must not replace the newer one.
        got = app.execute("SELECT blink_score('user-0')").fetchone()[0]
    assert got == pytest.approx(model_a.predict(model_a.population.features[:1])[0], abs=1e-9)
    with scored_db.connect() as conn:
        conn.execute(
            "INSERT INTO blink.feature_store_snapshots (user_id, features) VALUES ('user-0', %s)",
            [psycopg.types.json.Jsonb(docs[1])])
    with scored_db.connect(APP_USER) as app:
        got = app.execute("SELECT blink_score('user-0')").fetchone()[0]
    assert got == pytest.approx(model_a.predict(model_a.population.features[1:2])[0], abs=1e-9)


def test_blink_decide_returns_decision_band_and_provenance(scored_db, model_a):
    with scored_db.connect(APP_USER) as app:
        rows = app.execute("SELECT * FROM blink_decide('user-3')").fetchall()
        champion = app.execute("SELECT model_id, version FROM blink_champion()").fetchone()
    assert len(rows) == 1
    (user_id, probability, decision, band, model_id, version, snapshot_id, snapshot_at) = rows[0]
    expected = model_a.predict(model_a.population.features[3:4])[0]
    assert user_id == "user-3"
    assert probability == pytest.approx(expected, abs=1e-9)
    assert decision == ("declined" if expected >= model_a.artifact.decision_threshold
                        else "approved")
    bands = model_a.artifact.risk_bands
    assert band == next(b["band"] for b in bands if expected <= b["max_probability"])
    assert (model_id, version) == champion
    assert snapshot_id is not None and snapshot_at is not None


def test_decisions_follow_the_threshold(scored_db, model_a):
    with scored_db.connect(APP_USER) as app:
        rows = app.execute(
            "SELECT d.probability_default, d.decision FROM unnest(%s::text[]) u, "
            "LATERAL blink_decide(u) d", [model_a.population.user_ids[:300]]).fetchall()
    assert {d for _, d in rows} == {"approved", "declined"}
    assert all((d == "declined") == (p >= 0.2) for p, d in rows)


def test_unknown_user_is_null_and_decide_is_empty(scored_db):
    with scored_db.connect(APP_USER) as app:
        assert app.execute("SELECT blink_score('no-such-user')").fetchone()[0] is None
        assert app.execute("SELECT blink_score(NULL)").fetchone()[0] is None
        assert app.execute("SELECT * FROM blink_decide('no-such-user')").fetchall() == []


@pytest.mark.parametrize("user_id", [
    "o'brien", 'quote"d', "back\\slash", "'); DROP TABLE blink.blink_models; --",
    "日本語-ユーザー", "tab\tand\nnewline",
])
def test_user_ids_are_just_strings(scored_db, model_a, user_id):
    doc = model_a.population.documents()[5]
    with scored_db.connect() as conn:
        insert_snapshots(conn, [user_id], [doc])
    with scored_db.connect(APP_USER) as app:
        got = app.execute("SELECT blink_score(%s)", [user_id]).fetchone()[0]
        assert app.execute("SELECT blink_score(%s)", [user_id + "x"]).fetchone()[0] is None
    assert got == pytest.approx(model_a.predict(model_a.population.features[5:6])[0], abs=1e-9)
    with scored_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM blink.blink_models").fetchone()[0] == 1


def test_score_features_matches_lightgbm(scored_db, model_a):
    docs = model_a.population.documents()[:50]
    expected = model_a.predict(model_a.population.features[:50])
    with scored_db.connect(APP_USER) as app:
        got = [app.execute("SELECT blink_score_features(%s)",
                           [psycopg.types.json.Jsonb(d)]).fetchone()[0] for d in docs]
    assert np.abs(np.array(got) - expected).max() <= 1e-6


def test_absent_and_null_features_score_as_missing(scored_db, model_a):
    names = model_a.artifact.feature_names
    row = np.full((1, len(names)), np.nan)
    row[0, 0] = 2500.0
    expected = model_a.predict(row)[0]
    with scored_db.connect(APP_USER) as app:
        absent = app.execute(
            "SELECT blink_score_features(%s)",
            [psycopg.types.json.Jsonb({names[0]: 2500})]).fetchone()[0]
        nulls = app.execute(
            "SELECT blink_score_features(%s)",
            [psycopg.types.json.Jsonb({names[0]: 2500.0, names[1]: None})]).fetchone()[0]
    assert absent == pytest.approx(expected, abs=1e-9)
    assert nulls == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("document, message", [
    ('{"metric_total_balance": "12"}', 'feature "metric_total_balance"'),
    ('{"metric_total_balance": "NaN"}', 'feature "metric_total_balance"'),
    ('{"metric_total_balance": "Infinity"}', 'feature "metric_total_balance"'),
    ('{"metric_total_balance": 1e400}', 'feature "metric_total_balance" in the feature '
                                        'document must be finite'),
    ('{"metric_total_balance": true}', 'feature "metric_total_balance"'),
    ('{"metric_total_balance": [1]}', 'feature "metric_total_balance"'),
    ('{"metric_total_balanse": 1}', 'unknown feature "metric_total_balanse"'),
    ('[1, 2]', "must be a JSON object"),
])
def test_bad_feature_documents_name_the_problem(scored_db, document, message):
    with scored_db.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
            app.execute("SELECT blink_score_features(%s::jsonb)", [document])
    assert message in str(info.value)


def test_bad_value_in_a_stored_snapshot_names_user_and_feature(scored_db):
    with scored_db.connect() as conn:
        conn.execute("INSERT INTO blink.feature_store_snapshots (user_id, features) VALUES "
                     "('bad-user', '{\"metric_debt_load30\": \"high\"}')")
    with scored_db.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
            app.execute("SELECT blink_score('bad-user')")
    assert 'feature "metric_debt_load30"' in str(info.value)
    assert "'bad-user'" in str(info.value)


def test_extra_features_in_stored_snapshots_are_ignored(scored_db, model_a):
    doc = dict(model_a.population.documents()[7], metric_not_used_by_model=1.0)
    with scored_db.connect() as conn:
        insert_snapshots(conn, ["extra-user"], [doc])
    with scored_db.connect(APP_USER) as app:
        got = app.execute("SELECT blink_score('extra-user')").fetchone()[0]
    assert got == pytest.approx(model_a.predict(model_a.population.features[7:8])[0], abs=1e-9)


def test_no_champion_is_an_error_that_says_how_to_fix_it(db):
    with db.connect(APP_USER) as app:
        for sql in ("SELECT blink_score('user-1')",
                    "SELECT blink_score_features('{}')",
                    "SELECT * FROM blink_decide('user-1')"):
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as info:
                app.execute(sql)
            assert "no champion model" in str(info.value)
            assert "blink_promote" in (info.value.diag.message_hint or "")


def test_snapshots_must_be_json_objects(db):
    with db.connect() as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO blink.feature_store_snapshots (user_id, features) "
                         "VALUES ('u', '[1,2]')")


def test_probabilities_are_in_unit_interval(scored_db, model_a):
    with scored_db.connect(APP_USER) as app:
        values = app.execute("SELECT blink_score(u) FROM unnest(%s::text[]) u",
                             [model_a.population.user_ids[:200]]).fetchall()
    assert all(0.0 <= v <= 1.0 and not math.isnan(v) for (v,) in values)
