"""The core migration upgrades, downgrades to nothing, and upgrades again."""

from __future__ import annotations

from tests.conftest import alembic_downgrade, alembic_upgrade

API = ["blink_score", "blink_score_features", "blink_decide", "blink_champion",
       "blink_promote", "blink_rollback"]


def blink_objects(conn):
    schema = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'blink'").fetchone()[0]
    functions = conn.execute(
        "SELECT count(*) FROM pg_proc WHERE proname = ANY(%s) AND pronamespace = "
        "'public'::regnamespace", [API]).fetchone()[0]
    return schema, functions


def test_upgrade_downgrade_upgrade(empty_db):
    dsn = empty_db.dsn()
    alembic_upgrade(dsn)
    with empty_db.connect() as conn:
        assert blink_objects(conn) == (1, len(API))
        # every public function is documented and pins its search_path
        rows = conn.execute(
            "SELECT proname, obj_description(oid, 'pg_proc'), proconfig FROM pg_proc "
            "WHERE proname = ANY(%s)", [API]).fetchall()
        assert all(comment and config and any(c.startswith("search_path=") for c in config)
                   for _, comment, config in rows), rows
    alembic_downgrade(dsn, "base")
    with empty_db.connect() as conn:
        assert blink_objects(conn) == (0, 0)
        assert conn.execute("SELECT count(*) FROM blink_alembic_version").fetchone()[0] == 0
    alembic_upgrade(dsn)
    with empty_db.connect() as conn:
        assert blink_objects(conn) == (1, len(API))
        version = conn.execute("SELECT version_num FROM blink_alembic_version").fetchone()[0]
    assert version  # at head


def test_upgrade_is_a_no_op_when_at_head(empty_db):
    alembic_upgrade(empty_db.dsn())
    alembic_upgrade(empty_db.dsn())
    with empty_db.connect() as conn:
        assert blink_objects(conn) == (1, len(API))
