"""Categorical features (text and booleans) on every scoring path, against LightGBM's own
prediction from the raw values (a pandas DataFrame it encodes itself)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import psycopg
import pytest

from pyfuncs.features import FeatureSpec
from tests.fix_db import APP_USER, insert_snapshots, install
from trainer import registry

TOLERANCE = 1e-9  # the compiled trees give LightGBM's doubles; same as the numeric tests


@pytest.fixture
def cat_db(db, model_cat):
    """model_cat champion; one snapshot per document (unseen categories, nulls, absences)."""
    with db.connect() as conn:
        insert_snapshots(conn, model_cat.user_ids, model_cat.documents)
        install(conn, model_cat.artifact)
    return db


def test_the_data_exercises_what_it_must(model_cat):
    docs = model_cat.documents
    assert len(docs) >= 1000
    assert any(d.get("housing") == "castle" for d in docs)  # unseen category
    assert any(d.get("region") == "region-999" for d in docs)  # unseen, high cardinality
    assert any(d.get("direct_deposit") == "true" for d in docs)  # a string for a boolean
    assert any("housing" not in d for d in docs) and any(d.get("housing", 0) is None
                                                         for d in docs)
    assert any(d.get("direct_deposit") is True for d in docs)
    assert len(model_cat.artifact.feature_categories["region"]) == 300


def test_blink_score_and_decide_match_lightgbm(cat_db, model_cat):
    expected = model_cat.lightgbm_predict(model_cat.documents)
    with cat_db.connect(APP_USER) as app:
        got = np.array([app.execute("SELECT blink_score(%s)", [u]).fetchone()[0]
                        for u in model_cat.user_ids])
        decided = [app.execute("SELECT probability_default, decision FROM blink_decide(%s)",
                               [u]).fetchone() for u in model_cat.user_ids[:200]]
    assert np.abs(got - expected).max() <= TOLERANCE
    assert np.abs(np.array([p for p, _ in decided]) - expected[:200]).max() <= TOLERANCE
    assert [d for _, d in decided] == ["declined" if p >= 0.3 else "approved"
                                       for p in expected[:200]]


def test_blink_score_features_matches_lightgbm(cat_db, model_cat):
    docs = model_cat.documents[:300]
    expected = model_cat.lightgbm_predict(docs)
    with cat_db.connect(APP_USER) as app:
        got = np.array([app.execute("SELECT blink_score_features(%s)",
                                    [psycopg.types.json.Jsonb(d)]).fetchone()[0] for d in docs])
    assert np.abs(got - expected).max() <= TOLERANCE


def test_blink_score_batch_matches_lightgbm(cat_db, model_cat):
    users = model_cat.user_ids
    with cat_db.connect(APP_USER) as app:
        rows = app.execute("SELECT user_id, probability_default FROM blink_score_batch(%s)",
                           [users[::-1]]).fetchall()
    assert [r[0] for r in rows] == users[::-1]
    got = np.array([r[1] for r in rows])[::-1]
    assert np.abs(got - model_cat.lightgbm_predict(model_cat.documents)).max() <= TOLERANCE


def test_rescoring_audits_and_reasons_match_lightgbm(cat_db, model_cat):
    with cat_db.connect() as conn:
        summary = conn.execute("SELECT blink_rescore_pending()").fetchone()[0]
        rows = conn.execute(
            "SELECT user_id, probability_default, reasons FROM blink.risk_score_audits").fetchall()
    assert summary["scored"] == len(model_cat.user_ids) and summary["quarantined"] == 0
    by_user = {u: (p, r) for u, p, r in rows}
    expected = model_cat.lightgbm_predict(model_cat.documents)
    got = np.array([by_user[u][0] for u in model_cat.user_ids])
    assert np.abs(got - expected).max() <= TOLERANCE
    # SHAP values are LightGBM's own pred_contrib on the raw values, and each reason shows the
    # value as the user gave it: the category, or null when missing or unseen.
    phi = model_cat.lightgbm_predict(model_cat.documents, pred_contrib=True)
    names = model_cat.artifact.feature_names
    shown = 0
    for i, (user, doc) in enumerate(zip(model_cat.user_ids, model_cat.documents, strict=True)):
        for reason in by_user[user][1]:
            j = names.index(reason["feature"])
            assert reason["shap"] == pytest.approx(phi[i, j], abs=TOLERANCE)
            given = doc.get(reason["feature"])
            categories = model_cat.artifact.feature_categories.get(reason["feature"])
            if categories is not None:
                known = any(given == c and type(given) is type(c) for c in categories)
                assert reason["value"] == (given if known else None)
                shown += isinstance(reason["value"], str)
    assert shown > 100  # categories do appear among the reasons


def test_reason_text_can_be_specific_to_a_category(cat_db, model_cat):
    with cat_db.connect() as conn:
        conn.execute("INSERT INTO blink.reason_codes (feature_name, code, reason_text) VALUES"
                     " ('housing', 'RC20', 'Housing situation')")
        conn.execute("INSERT INTO blink.reason_codes (feature_name, category, code, reason_text)"
                     " VALUES ('housing', 'rent', 'RC21', 'Renting rather than owning'),"
                     " ('direct_deposit', 'false', 'RC30', 'No direct deposit of income')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO blink.reason_codes (feature_name, category, code, "
                         "reason_text) VALUES ('housing', 'rent', 'RC22', 'again')")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO blink.reason_codes (feature_name, category, code, "
                         "reason_text) VALUES ('*', 'rent', 'RC23', 'default per category')")
    seen: dict[tuple, set] = {}
    with cat_db.connect(APP_USER) as app:
        for user in model_cat.user_ids[:150]:
            for (feature, value, category, code, text) in app.execute(
                    "SELECT feature_name, feature_value, feature_category, reason_code, "
                    "reason_text FROM blink_explain(%s)", [user]).fetchall():
                if feature in ("housing", "direct_deposit"):
                    assert value is None  # categories go to feature_category
                    seen.setdefault((feature, category), set()).add((code, text))
    assert seen[("housing", "rent")] == {("RC21", "Renting rather than owning")}
    assert seen[("housing", "own")] == {("RC20", "Housing situation")}
    assert seen[("direct_deposit", "false")] == {("RC30", "No direct deposit of income")}
    assert {c for c, _ in seen[("direct_deposit", "true")]} != {"RC30"}


@pytest.mark.parametrize("document, words", [
    ({"housing": 3}, 'feature "housing" in the feature document is categorical'),
    ({"direct_deposit": 1}, 'feature "direct_deposit" in the feature document is categorical'),
    ({"income": "high"}, 'feature "income" in the feature document must be a number'),
])
def test_a_value_of_the_wrong_kind_is_a_22023_error_naming_the_feature(cat_db, document, words):
    with cat_db.connect(APP_USER) as app, pytest.raises(psycopg.errors.InvalidParameterValue,
                                                        match=words):
        app.execute("SELECT blink_score_features(%s)", [psycopg.types.json.Jsonb(document)])


def test_a_stored_snapshot_of_the_wrong_kind_errors_alone_and_batch_warns(cat_db):
    with cat_db.connect() as conn:
        insert_snapshots(conn, ["bad-1"], [{"housing": 2, "income": 1000.0}])
    with cat_db.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.InvalidParameterValue,
                           match='feature "housing" in snapshot .* of user \'bad-1\' is categ'):
            app.execute("SELECT blink_score('bad-1')")
        rows = app.execute("SELECT user_id, probability_default FROM "
                           "blink_score_batch(ARRAY['bad-1', 'cat-1'])").fetchall()
    assert rows[0] == ("bad-1", None) and rows[1][1] is not None


def test_a_row_whose_categories_disagree_with_the_model_text_is_refused(db, model_cat):
    """The categories column is checked against LightGBM's own record before any use."""
    artifact = model_cat.artifact
    swapped = dict(artifact.feature_categories)
    swapped["housing"] = list(reversed(swapped["housing"]))  # same names, other codes
    with db.connect() as conn:
        for bad in (swapped, {k: v for k, v in swapped.items() if k != "housing"}):
            row = replace(artifact, version=f"bad-{len(bad)}", feature_categories=bad)
            model_id = registry.insert_model(conn, row)
            with pytest.raises(psycopg.errors.DataCorrupted, match="refused"):
                registry.promote(conn, model_id, "test")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="feature_categories"):
            registry.insert_model(conn, replace(artifact, version="bad-type",
                                                feature_categories={"housing": [1, 2]}))


def test_feature_spec_round_trips_through_the_model_row(cat_db, model_cat):
    with cat_db.connect() as conn:
        names, categories = conn.execute(
            "SELECT feature_names, feature_categories FROM blink.blink_models").fetchone()
    spec = FeatureSpec(names, categories)
    assert spec == FeatureSpec(model_cat.artifact.feature_names,
                               model_cat.artifact.feature_categories)
    assert json.loads(json.dumps(categories))["direct_deposit"] == [False, True]
