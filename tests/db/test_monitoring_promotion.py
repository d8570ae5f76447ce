"""A better challenger in shadow is promoted by monitoring on a real server.

The champion was trained without the strongest features; a full model scores beside it in
shadow while the weeks are rescored. Once two consecutive windows of loans have matured,
blink_monitor_run() promotes the challenger through blink_promote, citing the runs that
measured those windows, and the old champion scores on probation.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.fix_db import TEMPLATE, create_database, drop_database
from trainer import synthetic
from trainer.config import TrainerConfig
from trainer.ingest import write_outcomes, write_snapshots
from trainer.pipeline import RunOptions, run

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday: cohorts are Monday-aligned weeks
WEEK = timedelta(weeks=1)
TRAINED = START + 16 * WEEK
STRONG = ["metric_overdraft_count90", "metric_debt_load30", "metric_volatility90",
          "metric_clean_buffer7", "metric_total_balance"]


@pytest.fixture(scope="module")
def contest(cluster, template_db, tmp_path_factory):
    """A weak champion and a full challenger in shadow, rescored weekly for 12 weeks."""
    database = create_database(cluster, TEMPLATE)
    history = synthetic.generate_history(1200, start=START, weeks=28, seed=5)
    config = TrainerConfig(max_rounds=150, early_stopping_rounds=20)
    with database.connect() as conn:
        write_snapshots(conn, [s for s in history.snapshots if s[1] < TRAINED])
        write_outcomes(conn, history.outcomes)
        weak = run(conn, replace(config, features=[
            f for f in synthetic.FEATURES + list(synthetic.CATEGORICAL) if f not in STRONG]),
            RunOptions(cutoff=TRAINED, deploy=True, version="weak",
                       output_dir=tmp_path_factory.mktemp("weak")))
        full = run(conn, config, RunOptions(cutoff=TRAINED, version="full",
                                            output_dir=tmp_path_factory.mktemp("full")))
        conn.execute("SELECT blink_shadow_add(%s, 'challenger')", [full.model_id])
        conn.execute("SELECT blink_rescore_pending()")
        for week in range(16, 28):
            lo, hi = START + week * WEEK, START + (week + 1) * WEEK
            write_snapshots(conn, [s for s in history.snapshots if lo <= s[1] < hi])
            assert conn.execute("SELECT blink_rescore_pending()").fetchone()[0]["complete"]
        # 1,200 users take ~420 loans a week (see test_monitoring). The cooldown counts in
        # wall-clock time from the champion's deployment, a minute ago: switch it off here
        # (tests/unit/test_monitoring_policy.py tests it).
        conn.execute("UPDATE blink.monitoring_policy SET mode = 'auto', "
                     "max_auc_standard_error = 0.06, max_cohorts_per_run = 20, "
                     "cooldown = '0 days'")
    yield database, weak.model_id, full.model_id
    drop_database(database)


def test_the_better_challenger_is_promoted_citing_the_windows_runs(contest):
    database, weak, full = contest
    with database.connect() as conn:
        runs = []
        for week in (23, 24, 25, 26, 27, 28):  # weekly runs, as pg_cron would
            summary = conn.execute("SELECT blink_monitor_run(%s)",
                                   [START + week * WEEK]).fetchone()[0]
            assert summary["ran"] and summary["complete"], summary
            runs.append(summary["run_id"])
            if conn.execute("SELECT model_id FROM blink.champion()").fetchone()[0] == full:
                break
        assert conn.execute("SELECT model_id FROM blink.champion()").fetchone()[0] == full
        deployment, reason, rule, cited = conn.execute(
            "SELECT d.action, d.reason, a.rule, a.cited_run_ids FROM blink.blink_deployments d"
            " JOIN blink.monitoring_actions a ON a.deployment_id = d.id").fetchone()
        assert (deployment, rule) == ("promote", "challenger_better")
        assert "ahead in each of 2 window(s)" in reason and f"{runs[-1]}" in reason
        assert cited[-1] == runs[-1] and set(cited) <= set(runs)
        # The win is recorded on the latest window with both windows' own gains.
        gain = conn.execute(
            "SELECT value, lower_bound, detail FROM blink.monitoring_metrics WHERE run_id = %s"
            " AND metric = 'auc_gain' AND model_id = %s AND status = 'breach' "
            "ORDER BY cohort_start DESC LIMIT 1", [runs[-1], full]).fetchone()
        value, lower, detail = gain
        assert lower > 0.005 and len(detail["windows"]) == 2
        assert all(w["gain"] > 0 for w in detail["windows"])
        # The weak model keeps scoring on probation, ready for a rollback.
        assert conn.execute("SELECT until IS NOT NULL FROM blink.blink_shadow_models "
                            "WHERE model_id = %s", [weak]).fetchone() == (True,)
