"""blink_explain: four readable reasons, computed once per (snapshot, model), as the app role."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from tests.fix_db import APP_USER, TRAINER_USER, insert_snapshots, install


@pytest.fixture
def explained_db(db, model_a):
    with db.connect() as conn:
        insert_snapshots(conn, model_a.population.user_ids[:100],
                         model_a.population.documents()[:100])
        install(conn, model_a.artifact)
    return db


def explain(conn, user_id):
    return conn.execute("SELECT * FROM blink_explain(%s)", [user_id]).fetchall()


def audit_rows(conn):
    return conn.execute("SELECT user_id, source FROM blink.risk_score_audits ORDER BY id"
                        ).fetchall()


def test_on_demand_explanation_is_stored_once_and_reused(explained_db, model_a):
    with explained_db.connect(APP_USER) as app:
        first = explain(app, "user-7")
        again = explain(app, "user-7")
    with explained_db.connect() as conn:
        assert audit_rows(conn) == [("user-7", "on-demand")]
    assert first == again  # read back from the stored audit, not recomputed
    assert [r[0] for r in first] == [1, 2, 3, 4]
    (rank, code, text, feature, value, category, shap, probability, decision, model_id,
     snapshot_id, source, scored_at) = first[0]
    assert source == "on-demand" and scored_at is not None
    expected_p = model_a.predict(model_a.population.features[7:8])[0]
    assert probability == pytest.approx(expected_p, abs=1e-9)
    assert decision == ("declined" if expected_p >= 0.2 else "approved")
    names = model_a.artifact.feature_names
    phi = model_a.booster.predict(model_a.population.features[7:8], pred_contrib=True,
                                  num_threads=1)[0]
    assert [r[3] for r in first] == [names[j] for j in np.argsort(-phi[:-1], kind="stable")[:4]]
    assert category is None and all(r[5] is None for r in first)
    assert [r[6] for r in first] == pytest.approx(sorted(phi[:-1], reverse=True)[:4], abs=1e-9)
    # base value + every SHAP value = the model's raw score of this user
    assert phi.sum() == pytest.approx(
        model_a.booster.predict(model_a.population.features[7:8], raw_score=True)[0], abs=1e-9)
    assert all(len(r[2]) > 10 and r[1].startswith("RC") for r in first)


def test_explain_reuses_what_rescoring_stored(explained_db):
    with explained_db.connect() as conn:
        conn.execute("SELECT blink_rescore_pending()")
        before = audit_rows(conn)
    with explained_db.connect(APP_USER) as app:
        rows = explain(app, "user-3")
    with explained_db.connect() as conn:
        assert audit_rows(conn) == before
        stored = conn.execute("SELECT reasons FROM blink.risk_score_audits WHERE user_id = "
                              "'user-3'").fetchone()[0]
    assert {r[11] for r in rows} == {"rescore"}
    assert [(r[1], r[2], r[6]) for r in rows] == [(s["code"], s["reason"], s["shap"])
                                                  for s in stored]
    with explained_db.connect() as conn:  # a rescoring run after on-demand writes nothing new
        assert conn.execute("SELECT blink_rescore_pending()").fetchone()[0]["scored"] == 0


def test_reason_texts_are_edited_by_the_risk_team(explained_db):
    with explained_db.connect(TRAINER_USER) as trainer:
        trainer.execute("UPDATE blink.reason_codes SET reason_text = 'Too many overdrafts lately'"
                        " WHERE feature_name = 'metric_overdraft_count90'")
        trainer.execute("UPDATE blink.reason_codes SET reason_text = 'Something else'"
                        " WHERE feature_name = '*'")
    with explained_db.connect() as conn:
        conn.execute("SELECT blink_rescore_pending()")
        reasons = [r for (rs,) in conn.execute("SELECT reasons FROM blink.risk_score_audits")
                   for r in rs]
    overdraft = [r for r in reasons if r["feature"] == "metric_overdraft_count90"
                 and r["value"] is not None]
    assert overdraft and {r["reason"] for r in overdraft} == {"Too many overdrafts lately"}
    assert {r["code"] for r in reasons} <= {f"RC0{i}" for i in range(1, 8)}


def test_unknown_user_has_no_reasons(explained_db):
    with explained_db.connect(APP_USER) as app:
        assert explain(app, "nobody") == []
        assert app.execute("SELECT count(*) FROM blink_explain(NULL)").fetchone()[0] == 0


def test_explain_without_a_champion_says_so(empty_champion_db):
    with empty_champion_db.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="no champion"):
            explain(app, "user-1")


@pytest.fixture
def empty_champion_db(db, model_a):
    with db.connect() as conn:
        insert_snapshots(conn, ["user-1"], model_a.population.documents()[:1])
    return db
