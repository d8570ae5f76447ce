"""Migration 0002_trainer upgrades, downgrades cleanly, and upgrades again."""

from __future__ import annotations

from tests.conftest import alembic_downgrade, alembic_upgrade

OBJECTS = """
SELECT to_regclass('blink.repayment_outcomes') IS NOT NULL,
       to_regclass('blink.blink_promotion_reviews') IS NOT NULL,
       to_regclass('blink.blink_deployment_history') IS NOT NULL,
       (SELECT count(*) FROM information_schema.columns WHERE table_schema = 'blink'
        AND table_name = 'blink_models' AND column_name IN
        ('model_text_sha256', 'treelite_model', 'treelite_model_sha256', 'report_html'))
"""


def test_0002_upgrade_downgrade_upgrade(empty_db):
    dsn = empty_db.dsn()
    alembic_upgrade(dsn, "0002_trainer")
    with empty_db.connect() as conn:
        assert conn.execute(OBJECTS).fetchone() == (True, True, True, 4)
    alembic_downgrade(dsn, "0001_core")
    with empty_db.connect() as conn:
        assert conn.execute(OBJECTS).fetchone() == (False, False, False, 0)
        # 0001's own objects are intact.
        assert conn.execute("SELECT to_regclass('blink.blink_models') IS NOT NULL").fetchone()[0]
    alembic_upgrade(dsn, "0002_trainer")
    with empty_db.connect() as conn:
        assert conn.execute(OBJECTS).fetchone() == (True, True, True, 4)


def test_model_artifact_hashes_are_checked_on_insert(db, model_a):
    import psycopg
    import pytest

    from trainer import registry

    artifact = model_a.artifact
    artifact_bad = type(artifact)(**{**artifact.__dict__, "version": "tampered",
                                     "treelite_model_sha256": "0" * 64})
    with db.connect() as conn:
        with pytest.raises(psycopg.errors.DataCorrupted, match="treelite_model_sha256"):
            registry.insert_model(conn, artifact_bad)
        assert registry.model_id_by_version(conn, "tampered") is None
        assert registry.insert_model(conn, artifact) > 0
