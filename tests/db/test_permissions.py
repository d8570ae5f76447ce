"""Roles: blink_app scores and reads audits only; blink_trainer inserts and promotes models."""

from __future__ import annotations

import psycopg
import pytest

from tests.fix_db import APP_USER, TRAINER_USER, insert_snapshots, install
from trainer import registry


@pytest.fixture
def ready_db(db, model_a):
    with db.connect() as conn:
        insert_snapshots(conn, ["user-1"], model_a.population.documents()[1:2])
        install(conn, model_a.artifact)
        conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                     "'stranger') THEN CREATE ROLE stranger LOGIN; END IF; END $$")
    return db


def test_app_role_calls_the_api_unqualified(ready_db):
    with ready_db.connect(APP_USER) as app:
        assert app.execute("SHOW search_path").fetchone()[0] == '"$user", public'
        assert app.execute("SELECT blink_score('user-1')").fetchone()[0] is not None
        assert app.execute("SELECT count(*) FROM blink.risk_score_audits").fetchone()[0] == 0
        assert app.execute("SELECT version FROM blink_champion()").fetchone()[0] == "test-a"


@pytest.mark.parametrize("sql", [
    "SELECT * FROM blink.feature_store_snapshots",
    "SELECT * FROM blink.blink_models",
    "INSERT INTO blink.feature_store_snapshots (user_id, features) VALUES ('u', '{}')",
    "SELECT blink_promote(1)",
    "SELECT blink_rollback()",
])
def test_app_role_cannot_touch_data_or_models(ready_db, sql):
    with ready_db.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(sql)


def test_roles_without_blink_app_cannot_score(ready_db):
    with ready_db.connect("stranger") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT blink_score('user-1')")


def test_trainer_inserts_and_promotes_but_cannot_rewrite(ready_db, model_b):
    with ready_db.connect(TRAINER_USER) as trainer:
        model_id = registry.insert_model(trainer, model_b.artifact)
        registry.promote(trainer, model_id, "weekly retrain")
        assert registry.champion_id(trainer) == model_id
        for sql in ("UPDATE blink.blink_models SET version = 'x'",
                    "DELETE FROM blink.blink_deployments",
                    "INSERT INTO blink.blink_deployments (model_id, action, reason) "
                    "VALUES (1, 'promote', 'sneaky')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                trainer.execute(sql)
