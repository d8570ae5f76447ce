"""A real pg_cron tick: blink_schedule() installs the jobs, the tick audits new snapshots."""

from __future__ import annotations

import psycopg
import pytest

from devenv.cluster import wait_for
from tests.fix_db import insert_snapshots, install

JOBS = "SELECT jobname, database, schedule, command FROM cron.job WHERE jobname LIKE %s ORDER BY 1"


@pytest.fixture
def cron_db(cluster):
    """The cluster's cron.database_name ('test', not migrated) with pg_cron created in it."""
    with psycopg.connect(cluster, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        yield conn


@pytest.mark.slow
def test_a_pg_cron_tick_audits_new_snapshots(cron_db, db, model_a):
    users = model_a.population.user_ids[:300]
    with db.connect() as conn:
        install(conn, model_a.artifact)
        every_minute = "schedule => '* * * * *', monitor_schedule => '* * * * *'"
        jobs = conn.execute("SELECT job_name, cron_database FROM "
                            f"blink_schedule({every_minute})").fetchall()
        try:
            assert jobs == [(f"blink-rescore/{db.name}", "test"),
                            (f"blink-trim-history/{db.name}", "test"),
                            (f"blink-monitor/{db.name}", "test"),
                            (f"blink-refresh-vectors/{db.name}", "test")]
            installed = cron_db.execute(JOBS, [f"blink-%/{db.name}"]).fetchall()
            assert sorted((j[0], j[1], j[2]) for j in installed) == [
                (f"blink-monitor/{db.name}", db.name, "* * * * *"),
                (f"blink-refresh-vectors/{db.name}", db.name, "* * * * *"),
                (f"blink-rescore/{db.name}", db.name, "* * * * *"),
                (f"blink-trim-history/{db.name}", "test", "17 3 * * *")]
            commands = {j[0].split("/")[0]: j[3] for j in installed}
            assert "blink_rescore_pending" in commands["blink-rescore"]
            assert "blink_monitor_run" in commands["blink-monitor"]
            assert "cron.job_run_details" in commands["blink-trim-history"]
            assert "blink_refresh_feature_vectors" in commands["blink-refresh-vectors"]
            # scheduling again updates the same jobs instead of adding more
            conn.execute(f"SELECT blink_schedule({every_minute})")
            assert len(cron_db.execute(JOBS, [f"blink-%/{db.name}"]).fetchall()) == 4
            # the tick below rescores with two workers, two jobs at once
            conn.execute(f"SELECT blink_schedule({every_minute}, rescore_workers => 2)")
            workers = [f"blink-rescore-{k}-of-2/{db.name}" for k in range(2)]
            assert sorted(j[0] for j in cron_db.execute(
                JOBS, [f"blink-rescore%/{db.name}"]).fetchall()) == workers

            insert_snapshots(conn, users, model_a.population.documents()[:300])

            def audited() -> int:
                return conn.execute("SELECT count(*) FROM blink.risk_score_audits "
                                    "WHERE source = 'rescore'").fetchone()[0]

            assert wait_for(lambda: audited() == len(users), timeout=75, interval=1), audited()
            rows = conn.execute("SELECT count(DISTINCT snapshot_id), min(jsonb_array_length("
                                "reasons)) FROM blink.risk_score_audits").fetchone()
            assert rows == (len(users), 4)
            for name in workers:  # each worker's job ran (the users split between them)
                run = cron_db.execute(
                    "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid) "
                    "WHERE j.jobname = %s ORDER BY d.runid LIMIT 1", [name]).fetchone()
                assert run is not None and run[0] in ("succeeded", "running"), name
            # pg_cron runs the monitoring job too: a run on record, as the owner.
            assert wait_for(lambda: conn.execute(
                "SELECT count(*) FROM blink.monitoring_runs").fetchone()[0] > 0,
                timeout=75, interval=1)
            assert conn.execute("SELECT run_by, status FROM blink.monitoring_runs LIMIT 1"
                                ).fetchone() == ("postgres", "done")
        finally:
            removed = conn.execute("SELECT blink_unschedule()").fetchone()[0]
        assert removed == 5  # two workers, the trim, the monitoring and the refresh
        assert cron_db.execute(JOBS, [f"blink-%/{db.name}"]).fetchall() == []
        assert conn.execute("SELECT blink_unschedule()").fetchone()[0] == 0


def test_schedule_checks_its_arguments(cron_db, db):
    with db.connect() as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="max_users"):
            conn.execute("SELECT blink_schedule(max_users => 0)")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="keep_history"):
            conn.execute("SELECT blink_schedule(keep_history => '1 minute')")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="workers"):
            conn.execute("SELECT blink_schedule(rescore_workers => 0)")
        assert conn.execute("SELECT blink_unschedule()").fetchone()[0] == 0  # nothing made


def test_schedule_installs_one_rescoring_job_per_worker(cron_db, db):
    def rescore_jobs() -> list[tuple[str, str]]:
        return [(j[0], j[3]) for j in cron_db.execute(JOBS, ["blink-rescore%"]).fetchall()]

    # another database's rescoring job, named by the same rule: never touched here
    cron_db.execute("SELECT cron.schedule('blink-rescore-0-of-2/test', '0 0 1 1 *', 'SELECT 1')")
    other = ("blink-rescore-0-of-2/test", "SELECT 1")
    with db.connect() as conn:
        try:
            jobs = conn.execute("SELECT job_name, command FROM "
                                "blink_schedule(rescore_workers => 3)").fetchall()
            names = [f"blink-rescore-{k}-of-3/{db.name}" for k in range(3)]
            assert [j[0] for j in jobs] == [*names, f"blink-trim-history/{db.name}",
                                            f"blink-monitor/{db.name}",
                                            f"blink-refresh-vectors/{db.name}"]
            assert sorted(rescore_jobs()) == sorted([other, *(
                (name, "SELECT public.blink_rescore_pending(max_users => 200000, "
                       f"max_seconds => 240, worker => {k}, workers => 3)")
                for k, name in enumerate(names))])
            # one worker again: the three go, the single job comes back
            conn.execute("SELECT blink_schedule(max_users => 5000)")
            assert sorted(rescore_jobs()) == sorted([other, (
                f"blink-rescore/{db.name}", "SELECT public.blink_rescore_pending("
                "max_users => 5000, max_seconds => 240)")])
            conn.execute("SELECT blink_schedule(rescore_workers => 2)")
            assert sorted(j[0] for j in rescore_jobs()) == sorted([
                other[0], f"blink-rescore-0-of-2/{db.name}", f"blink-rescore-1-of-2/{db.name}"])
        finally:
            removed = conn.execute("SELECT blink_unschedule()").fetchone()[0]
        assert removed == 5  # two workers, the trim, the monitoring and the refresh
        assert rescore_jobs() == [other]
    cron_db.execute("SELECT cron.unschedule('blink-rescore-0-of-2/test')")
