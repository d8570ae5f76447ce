"""Migrations: frozen steps, a stairway that ends equal to a fresh install, safe downgrades."""

from __future__ import annotations

import re
import shutil
import subprocess

import psycopg
import pytest

from devenv import catalog, migrate
from devenv.paths import PG_BIN
from migrations import layers
from tests.fix_db import create_database, drop_database, insert_snapshots, install


def schema_dump(database) -> str:
    """pg_dump --schema-only, without the lines that differ between any two dumps."""
    out = subprocess.run([str(PG_BIN / "pg_dump"), "--schema-only", "--no-owner",
                          database.dsn()], check=True, capture_output=True, text=True).stdout
    keep = [line for line in out.splitlines()
            if line and not line.startswith(("--", "\\restrict", "\\unrestrict", "SET ",
                                              "SELECT pg_catalog.set_config"))]
    return "\n".join(keep)


def at_revision(database) -> str | None:
    with database.connect() as conn:
        row = conn.execute("SELECT version_num FROM blink_alembic_version").fetchone()
    return row[0] if row else None


def test_released_incremental_files_are_unchanged():
    problems = layers.frozen_problems()
    assert problems == [], "\n".join(problems)


def test_an_edited_released_file_is_caught_with_the_reason(tmp_path, monkeypatch):
    copy = tmp_path / "incremental"
    shutil.copytree(layers.INCREMENTAL, copy)
    monkeypatch.setattr(layers, "INCREMENTAL", copy)
    monkeypatch.setattr(layers, "FROZEN", copy / "frozen.txt")
    path = copy / "0001_core.sql"
    path.write_text(path.read_text().replace("user_id     text NOT NULL", "user_id text"))
    (copy / "0099_draft.sql").write_text("SELECT 1;\n")
    problems = layers.frozen_problems()
    assert len(problems) == 2
    assert problems[0].startswith("db/incremental/0001_core.sql was edited after release")
    assert "new numbered file" in problems[0]
    assert problems[1].startswith("db/incremental/0099_draft.sql is not frozen")
    with pytest.raises(layers.MigrationRefused, match="0001_core.sql differs from the released"):
        layers.step_sql("0001_core")
    with pytest.raises(layers.MigrationRefused, match="edited after release"):
        layers.freeze()  # never re-freezes an edited file
    path.write_text((layers.REPO_ROOT / "db/incremental/0001_core.sql").read_text())
    assert layers.freeze() == ["0099_draft.sql"] and layers.frozen_problems() == []


def test_stairway_up_and_down_one_revision_at_a_time_ends_like_a_fresh_install(cluster):
    stairway, fresh = create_database(cluster), create_database(cluster)
    try:
        revisions = migrate.revisions()
        assert revisions[0] == "0001_core" and revisions[-1] == migrate.head()
        previous = "base"
        for revision in revisions:
            migrate.upgrade(stairway.dsn(), revision)
            assert at_revision(stairway) == revision
            migrate.downgrade(stairway.dsn(), previous, drop_data="yes")
            assert at_revision(stairway) == (None if previous == "base" else previous)
            migrate.upgrade(stairway.dsn(), revision)
            previous = revision
        migrate.upgrade(fresh.dsn())
        assert at_revision(stairway) == at_revision(fresh) == migrate.head()
        assert schema_dump(stairway) == schema_dump(fresh)
    finally:
        drop_database(stairway)
        drop_database(fresh)


def test_upgrade_at_head_is_a_no_op_and_the_api_exists_only_at_head(empty_db):
    migrate.upgrade(empty_db.dsn())
    before = schema_dump(empty_db)
    migrate.upgrade(empty_db.dsn())
    assert schema_dump(empty_db) == before
    with empty_db.connect() as conn:
        assert ("FUNCTION", "blink_score(text)") in layers.api_objects(conn)
    migrate.downgrade(empty_db.dsn(), "-1", drop_data="yes")
    with empty_db.connect() as conn:
        assert layers.api_objects(conn) == []  # below head: tables only
        assert conn.execute("SELECT to_regclass('blink.blink_models')").fetchone()[0]


def test_an_upgrade_defines_the_champion_constants_from_the_deployments(db, model_a):
    # The idempotent layer recreates blink.champion_model_id() with the rest of the API; it
    # must come back as the champion, not as "no champion", or blink_score would fail.
    with db.connect() as conn:
        model_id = install(conn, model_a.artifact)
        insert_snapshots(conn, ["u"], model_a.population.documents()[:1])
        before = conn.execute("SELECT blink_score('u')").fetchone()[0]
        assert before is not None
    migrate.downgrade(db.dsn(), "0010_vector_refreshes")
    with db.connect() as conn:
        assert ("FUNCTION", "blink.champion_model_id()") not in layers.api_objects(conn)
    migrate.upgrade(db.dsn())
    with db.connect() as conn:
        assert conn.execute("SELECT blink.champion_model_id()").fetchone() == (model_id,)
        assert conn.execute("SELECT blink_score('u')").fetchone()[0] == before


USER_ID_COLLATIONS = """
SELECT a.attrelid::regclass::text, c.collname FROM pg_attribute a
JOIN pg_class r ON r.oid = a.attrelid AND r.relkind = 'r'
JOIN pg_collation c ON c.oid = a.attcollation
WHERE a.attname = 'user_id' AND r.relnamespace = 'blink'::regnamespace ORDER BY 1
"""


def test_user_ids_compare_as_bytes_after_an_upgrade_from_a_live_install(empty_db, model_a):
    # A database installed at 0011 as head had the API, whose view blink.current_decisions
    # reads risk_score_audits.user_id: 0012 must retype that column under it, keep every
    # row, and leave the lookups on the rebuilt index.
    migrate.upgrade(empty_db.dsn(), "0011_champion_constants")
    with empty_db.connect() as conn:
        layers.apply_api(conn)  # what an install with 0011 as head had
        assert conn.execute("SELECT to_regclass('blink.current_decisions')").fetchone()[0]
        install(conn, model_a.artifact)
        insert_snapshots(conn, ["user-b", "user-A"], model_a.population.documents()[:2])
        before = conn.execute("SELECT blink_score('user-b'), blink_score('user-A')").fetchone()
        assert conn.execute(USER_ID_COLLATIONS).fetchall() == [
            (table, "default") for table in ("blink.feature_store_snapshots",
                                             "blink.repayment_outcomes",
                                             "blink.risk_score_audits",
                                             "blink.unscorable_snapshots")]
        # a lender's own view on an id column stops the upgrade, named, changing nothing
        conn.execute("CREATE VIEW public.lender_report AS SELECT user_id "
                     "FROM blink.repayment_outcomes")
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="lender_report"):
        migrate.upgrade(empty_db.dsn())
    assert at_revision(empty_db) == "0011_champion_constants"
    with empty_db.connect() as conn:
        assert conn.execute("SELECT to_regclass('blink.current_decisions')").fetchone()[0]
        conn.execute("DROP VIEW public.lender_report")
    migrate.upgrade(empty_db.dsn())
    with empty_db.connect() as conn:
        assert {collation for _, collation in conn.execute(USER_ID_COLLATIONS)} == {"C"}
        assert conn.execute("SELECT to_regclass('blink.current_decisions')").fetchone()[0]
        assert conn.execute(
            "SELECT blink_score('user-b'), blink_score('user-A')").fetchone() == before
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN SELECT * FROM blink.feature_store_snapshots WHERE user_id = $$user-b$$"))
        assert "feature_store_snapshots_user_latest" in plan  # a text constant still uses it
    migrate.downgrade(empty_db.dsn(), "0011_champion_constants")
    with empty_db.connect() as conn:
        assert {collation for _, collation in conn.execute(USER_ID_COLLATIONS)} == {"default"}
        assert conn.execute("SELECT count(*) FROM blink.feature_store_snapshots").fetchone() == (2,)


SNAPSHOTS_FILE = "SELECT pg_relation_filenode('blink.feature_store_snapshots')"


def test_rescore_cursors_arrive_without_rewriting_snapshots_and_leave_freely(empty_db, model_a):
    # 0014 adds written_xid without rewriting the table (rows written before keep NULL: the
    # first run of each model reads every user); a downgrade drops only bookkeeping.
    migrate.upgrade(empty_db.dsn(), "0013_rescore_workers")
    with empty_db.connect() as conn:
        layers.apply_api(conn)  # what an install with 0013 as head had
        install(conn, model_a.artifact)
        insert_snapshots(conn, ["user-old"], model_a.population.documents()[:1])
        file_before = conn.execute(SNAPSHOTS_FILE).fetchone()
    migrate.upgrade(empty_db.dsn())
    with empty_db.connect() as conn:
        assert conn.execute(SNAPSHOTS_FILE).fetchone() == file_before
        insert_snapshots(conn, ["user-new"], model_a.population.documents()[1:2])
        assert conn.execute("SELECT user_id, written_xid IS NOT NULL FROM "
                            "blink.feature_store_snapshots ORDER BY id").fetchall() == [
            ("user-old", False), ("user-new", True)]
        first = conn.execute("SELECT blink_rescore_pending()").fetchone()[0]
        assert first["scored"] == 2 and first["full_scans"] == [first["champion_id"]]
        assert conn.execute("SELECT count(*) FROM blink.rescore_cursors").fetchone() == (1,)
    migrate.downgrade(empty_db.dsn(), "0013_rescore_workers")  # no drop_data needed
    with empty_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM blink.feature_store_snapshots").fetchone() == (2,)
        assert conn.execute("SELECT to_regclass('blink.rescore_cursors')").fetchone() == (None,)


def test_downgrade_refuses_to_delete_data_unless_confirmed(db):
    with db.connect() as conn:
        conn.execute("INSERT INTO blink.feature_store_snapshots (user_id, features) "
                     "SELECT 'u' || i, '{}' FROM generate_series(1, 3) i")
    with pytest.raises(layers.MigrationRefused) as refused:
        migrate.downgrade(db.dsn(), "base")
    message = str(refused.value)
    assert "blink.reason_codes (8 rows)" in message and "-x drop_data=yes" in message
    assert at_revision(db) == migrate.head()  # nothing changed
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM blink.feature_store_snapshots").fetchone() == (3,)
        assert ("FUNCTION", "blink_score(text)") in layers.api_objects(conn)


def test_downgrade_never_cascades_into_objects_blink_did_not_create(db):
    with db.connect() as conn:
        conn.execute("INSERT INTO blink.feature_store_snapshots (user_id, features) "
                     "VALUES ('u', '{}')")
        conn.execute("CREATE VIEW public.my_report AS SELECT id, features "
                     "FROM blink.feature_store_snapshots")
    with pytest.raises(psycopg.errors.DependentObjectsStillExist, match="my_report"):
        migrate.downgrade(db.dsn(), "base", drop_data="yes")
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.my_report").fetchone() == (1,)
    assert at_revision(db) == migrate.head()


def test_downgrade_names_what_it_drops(db, capfd):
    migrate.downgrade(db.dsn(), "0001_core", drop_data="yes")
    err = capfd.readouterr().err
    assert "removing blink's API" in err
    assert "dropping blink.repayment_outcomes" in err
    assert "dropping column blink.blink_models.report_html" in err


@pytest.mark.parametrize("trap", [
    "CREATE FUNCTION public.blink_score(text) RETURNS float8 LANGUAGE sql AS 'SELECT 0.0';"
    "ALTER FUNCTION public.blink_score(text) OWNER TO mallory",
    "GRANT CREATE ON SCHEMA public TO mallory",
])
def test_install_refuses_a_public_schema_another_role_controls(empty_db, trap):
    with empty_db.connect() as conn:
        conn.execute("DO $$ BEGIN CREATE ROLE mallory; EXCEPTION WHEN duplicate_object "
                     "THEN NULL; END $$")
        conn.execute(trap)
    with pytest.raises(layers.MigrationRefused, match="mallory"):
        migrate.upgrade(empty_db.dsn())
    with empty_db.connect() as conn:  # one transaction: nothing of blink was left behind
        assert conn.execute("SELECT to_regnamespace('blink')").fetchone() == (None,)


def test_schema_file_shows_every_table_as_installed(template_db):
    with template_db.connect() as conn:
        current = catalog.table_definitions(conn)
    expected = (layers.REPO_ROOT / "db" / "schema.sql").read_text()
    assert current == expected, "db/schema.sql is out of date: run `make schema` and review it"
    assert re.findall(r"^CREATE TABLE blink\.(\w+)", current, re.M) == sorted(
        ["blink_deployments", "blink_models", "blink_promotion_reviews", "blink_shadow_models",
         "feature_store_snapshots", "feature_vector_refreshes", "reason_codes",
         "repayment_outcomes", "risk_score_audits",
         "unscorable_snapshots", "vetted_models", "monitoring_actions", "monitoring_events",
         "monitoring_metrics", "monitoring_policy", "monitoring_policy_history",
         "monitoring_runs", "rescore_cursors", "retrain_request_results", "retrain_requests"])


def test_sql_surface_matches_the_expected_file(template_db):
    with template_db.connect() as conn:
        surface = catalog.sql_surface(conn)
    expected = (layers.REPO_ROOT / "tests" / "expected" / "sql_surface.txt").read_text()
    assert surface == expected, (
        "blink's SQL surface changed (functions, volatility, security, privileges): if that "
        "is intended, run `make schema` and review tests/expected/sql_surface.txt")
    functions = [line for line in surface.splitlines() if line.startswith("function ")]
    assert functions and not [f for f in functions if "NO COMMENT" in f]
    definers = [f for f in functions if "SECURITY DEFINER" in f]
    assert definers and all("config: search_path=" in f for f in definers)
    assert not [f for f in functions if "PUBLIC:EXECUTE" in f]
