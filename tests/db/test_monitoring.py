"""Monitoring end to end on a real server: a drifting history, rescored week by week.

One database for the module (training and twelve weeks of rescoring take a while); the
tests run in file order and build on each other, as a deployment's weeks would.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.fix_db import APP_USER, TEMPLATE, TRAINER_USER, create_database, drop_database
from trainer import synthetic
from trainer.cli import main as blink
from trainer.config import TrainerConfig
from trainer.ingest import write_outcomes, write_snapshots
from trainer.pipeline import RunOptions, run

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday: cohorts are Monday-aligned weeks
WEEK = timedelta(weeks=1)
TRAINED = START + 16 * WEEK
WEEKS = 29  # weeks 16..27 are rescored one by one; week 28 is kept for the broken model
DRIFT_AT = START + 22 * WEEK
DRIFTING = ["metric_debt_load30", "metric_median_paycheck", "metric_total_balance"]
AS_OF = START + 28 * WEEK
TABLES = {"monitoring_runs": "status", "monitoring_metrics": "status",
          "monitoring_events": "message", "retrain_requests": "reason",
          "retrain_request_results": "outcome", "monitoring_actions": "reason",
          "monitoring_policy_history": "changed_by"}


def _week(history: synthetic.History, week: int) -> list:
    lo, hi = START + week * WEEK, START + (week + 1) * WEEK
    return [s for s in history.snapshots if lo <= s[1] < hi]


def _rescore(conn: psycopg.Connection) -> None:
    summary = conn.execute("SELECT blink_rescore_pending()").fetchone()[0]
    assert summary["complete"], summary


@pytest.fixture(scope="module")
def world(cluster, template_db, tmp_path_factory):
    """1,200 users: trained on 16 weeks, then rescored weekly; drift from week 22."""
    database = create_database(cluster, TEMPLATE)
    history = synthetic.generate_history(
        1200, start=START, weeks=WEEKS, seed=5, drift_at=DRIFT_AT, drift_features=DRIFTING,
        drift_logit=0.0)
    with database.connect() as conn:
        write_snapshots(conn, [s for s in history.snapshots if s[1] < TRAINED])
        write_outcomes(conn, history.outcomes)
        result = run(conn, TrainerConfig(max_rounds=150, early_stopping_rounds=20),
                     RunOptions(cutoff=TRAINED, deploy=True, version="monitored",
                                output_dir=tmp_path_factory.mktemp("models")))
        assert result.decision is not None and result.decision.decision == "promoted"
        _rescore(conn)
        for week in range(16, 28):
            write_snapshots(conn, _week(history, week))
            _rescore(conn)
        # 1,200 users take ~420 loans a week: accept a wider AUC sampling error than the
        # default, so realised performance is measured, not "insufficient data".
        conn.execute("UPDATE blink.monitoring_policy SET mode = 'auto', "
                     "max_auc_standard_error = 0.06, max_cohorts_per_run = 20")
    yield database, history, result.model_id
    drop_database(database)


def test_a_run_measures_every_closed_cohort_and_requests_retraining(world):
    database, _, champion = world
    with database.connect() as conn, database.connect() as listener:
        listener.execute("LISTEN blink_monitoring")
        summary = conn.execute("SELECT blink_monitor_run(%s)", [AS_OF]).fetchone()[0]
        assert summary["ran"] and summary["complete"] and summary["models"] == [champion]
        run_id = summary["run_id"]
        inputs = [r[0] for r in conn.execute(
            "SELECT DISTINCT cohort_start FROM blink.monitoring_metrics WHERE run_id = %s "
            "AND cohort_kind = 'inputs' ORDER BY 1", [run_id])]
        assert inputs[0] == START + 15 * WEEK and inputs[-1] == START + 27 * WEEK
        assert len(inputs) == 13
        # Drift is named, feature by feature, from the week it starts.
        named = conn.execute(
            "SELECT cohort_start, detail->'features' FROM blink.monitoring_events "
            "WHERE run_id = %s AND rule = 'feature_drift' ORDER BY cohort_start",
            [run_id]).fetchall()
        assert named and named[0][0] == DRIFT_AT
        assert set(DRIFTING) <= set(named[0][1])
        # transactions follow paycheck; BH may let one more through when many features drift
        assert len(set(named[0][1]) - set(DRIFTING) - {"metric_transaction_count90"}) <= 1
        # Before the drift: nothing breached in any feature.
        assert conn.execute(
            "SELECT count(*) FROM blink.monitoring_metrics WHERE run_id = %s AND status = "
            "'breach' AND cohort_start < %s AND metric LIKE 'feature%%'",
            [run_id, DRIFT_AT]).fetchone()[0] == 0
        # One retrain request, in the second drifted week, citing this run.
        request = conn.execute(
            "SELECT r.id, r.rules, a.cited_run_ids, e.cohort_start FROM blink.retrain_requests r"
            " JOIN blink.monitoring_actions a ON a.retrain_request_id = r.id"
            " JOIN blink.monitoring_events e ON e.run_id = r.run_id"
            "  AND e.rule = r.rules[1] AND e.severity = 'action'").fetchall()
        assert len(request) == 1
        assert request[0][2] == [run_id] and request[0][3] == DRIFT_AT + WEEK
        # Realised performance on matured loans (issued up to ~week 20), with its bounds.
        realised = conn.execute(
            "SELECT cohort_start, value, sampling_error, lower_bound, status FROM "
            "blink.monitoring_metrics WHERE run_id = %s AND metric = 'realised_auc' "
            "ORDER BY 1", [run_id]).fetchall()
        assert [r[0] for r in realised] == [START + w * WEEK for w in range(15, 21)]
        assert all(0.6 < r[1] < 0.9 and 0 < r[2] < 0.06 and r[4] == "ok" for r in realised)
        # Alerts and actions were announced on the documented channel.
        notes = [json.loads(n.payload) for n in listener.notifies(timeout=1, stop_after=50)]
        assert any(n["rule"] == "feature_drift" for n in notes)
        assert any(n["severity"] == "action" and n["rule"] == request[0][1][0] for n in notes)


def test_running_again_measures_nothing_twice_and_recompute_gives_identical_figures(world):
    database, _, _ = world
    with database.connect() as conn:
        again = conn.execute("SELECT blink_monitor_run(%s)", [AS_OF]).fetchone()[0]
        assert again["cohorts"] == 0 and again["actions"] == []
        first = conn.execute("SELECT min(id) FROM blink.monitoring_runs").fetchone()[0]
        redo = conn.execute("SELECT blink_monitor_run(%s, recompute => true)",
                            [AS_OF]).fetchone()[0]
        assert redo["actions"] == [] and redo["cohorts"] > 0
        figures = """SELECT cohort_kind, cohort_start, metric, feature, value, critical_value,
                            lower_bound, status FROM blink.monitoring_metrics WHERE run_id = %s
                     ORDER BY 1, 2, 3, 4"""
        new = conn.execute(figures, [redo["run_id"]]).fetchall()
        old = set(conn.execute(figures, [first]).fetchall())
        assert new and all(row in old for row in new)
        assert conn.execute("SELECT count(*) FROM blink.retrain_requests").fetchone()[0] == 1


def test_the_trainer_trains_only_when_requested(world, tmp_path, capsys):
    database, _, _ = world
    args = ["train", "--deploy", "--if-requested", "--dsn", database.dsn(TRAINER_USER),
            "--output-dir", str(tmp_path), "--max-rounds", "60", "-q"]
    assert blink(args) == 0
    out = capsys.readouterr().out
    assert "retrain requested by monitoring" in out and "written" in out
    with database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM blink.pending_retrain_requests"
                            ).fetchone()[0] == 0
        handled = conn.execute("SELECT model_id, outcome, handled_by FROM "
                               "blink.retrain_request_results").fetchall()
        assert len(handled) == 1 and handled[0][0] is not None
        assert handled[0][1].split(":")[0] in ("promoted", "refused")
        assert handled[0][2] == TRAINER_USER
    assert blink(args) == 0
    assert "no retrain request pending: nothing to do" in capsys.readouterr().out


def test_a_broken_deployment_is_rolled_back_in_its_first_window(world):
    database, history, _ = world
    with database.connect() as conn:
        good = conn.execute("SELECT model_id FROM blink.champion()").fetchone()[0]
        # The same model with a mistyped threshold: it would decline almost everyone.
        broken = conn.execute(
            """INSERT INTO blink.blink_models (version, feature_names, model_text, compiled_lib,
                   compiled_lib_sha256, compiled_platform, decision_threshold, risk_bands,
                   metrics, params, library_versions, model_text_sha256, feature_categories,
                   monitoring_reference)
               SELECT 'broken-threshold', feature_names, model_text, compiled_lib,
                   compiled_lib_sha256, compiled_platform, 0.005, risk_bands, metrics, params,
                   library_versions, model_text_sha256, feature_categories, monitoring_reference
               FROM blink.blink_models WHERE id = %s RETURNING id""", [good]).fetchone()[0]
        conn.execute("SELECT blink_promote(%s, 'threshold change')", [broken])
        write_snapshots(conn, _week(history, 28))
        _rescore(conn)
        summary = conn.execute("SELECT blink_monitor_run(%s)",
                               [AS_OF + WEEK]).fetchone()[0]
        assert conn.execute("SELECT model_id FROM blink.champion()").fetchone()[0] == good
        deployment = conn.execute(
            "SELECT d.action, d.reason, a.rule, a.cited_run_ids, a.model_id FROM "
            "blink.blink_deployments d JOIN blink.monitoring_actions a ON a.deployment_id = d.id"
            ).fetchall()
        assert len(deployment) == 1
        action, reason, rule, cited, model_id = deployment[0]
        assert (action, rule, model_id, cited) == ("rollback", "broken_deployment", broken,
                                                   [summary["run_id"]])
        assert "approval rate" in reason and f"monitoring runs {summary['run_id']}" in reason
        # Never re-promoted automatically: the rollback is on record for the next runs.
        assert conn.execute("SELECT never_auto FROM (SELECT ARRAY(SELECT DISTINCT model_id "
                            "FROM blink.monitoring_actions WHERE action = 'rollback') "
                            "AS never_auto) x").fetchone()[0] == [broken]


def test_the_history_is_append_only_and_readable_by_the_roles(world):
    database, _, _ = world
    with database.connect() as conn:
        for table, column in TABLES.items():
            for sql in (f"UPDATE blink.{table} SET {column} = {column}",
                        f"DELETE FROM blink.{table}"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="immutable"):
                    conn.execute(sql)
        with pytest.raises(psycopg.Error, match="exactly one row"):
            conn.execute("DELETE FROM blink.monitoring_policy")
        edits = conn.execute("SELECT count(*) FROM blink.monitoring_policy_history"
                             ).fetchone()[0]
        assert edits == 1  # the fixture's UPDATE, before and after
    with database.connect(TRAINER_USER) as conn:
        for view in ("monitoring_status", "monitoring_timeseries", "monitoring_timeline",
                     "pending_retrain_requests", "monitoring_metrics", "monitoring_actions"):
            conn.execute(f"SELECT * FROM blink.{view} LIMIT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT blink_monitor_run()")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE blink.monitoring_policy SET mode = 'off'")
    with database.connect(APP_USER) as conn:
        status = conn.execute("SELECT role, version FROM blink.monitoring_status "
                              "ORDER BY role").fetchall()
        # The retrained model is champion; the first one scores on probation beside it.
        assert [r[0] for r in status] == ["champion", "probation"]
        assert ("probation", "monitored") in status
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM blink.monitoring_metrics")


def test_the_kill_switch_and_mode_off_stop_actions(world):
    database, _, _ = world
    with database.connect() as conn:
        conn.execute("UPDATE blink.monitoring_policy SET kill_switch = true")
        summary = conn.execute("SELECT blink_monitor_run(%s, recompute => true)",
                               [AS_OF + WEEK]).fetchone()[0]
        assert conn.execute("SELECT mode FROM blink.monitoring_runs WHERE id = %s",
                            [summary["run_id"]]).fetchone()[0] == "alert"
        conn.execute("UPDATE blink.monitoring_policy SET mode = 'off', kill_switch = false")
        off = conn.execute("SELECT blink_monitor_run()").fetchone()[0]
        assert "monitoring is off" in off["reason"]
        assert conn.execute("SELECT count(*) FROM blink.monitoring_metrics WHERE run_id = %s",
                            [off["run_id"]]).fetchone()[0] == 0
