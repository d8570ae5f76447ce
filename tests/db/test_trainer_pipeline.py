"""The trainer against a real server, as the blink_trainer role: point-in-time training set,
the promotion gate both ways, artifacts and report in the model row, bad input."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.fix_db import TRAINER_USER, install
from tests.fix_trainer import (
    CUTOFF,
    counts,
    fast_config,
    load,
    small_history,
    weak_champion_artifact,
)
from trainer import __main__ as cli
from trainer.pipeline import RunOptions, load_dataset, run
from trainer.report import PLOTS, SHAP_PLOTS


@pytest.fixture(scope="module")
def history():
    return small_history()


@pytest.fixture(scope="module")
def weak():
    return weak_champion_artifact()[1]


@pytest.fixture
def loaded(db, history):
    with db.connect() as conn:
        load(conn, history)
    return db


def test_snapshot_written_after_issue_time_cannot_change_training_set(loaded):
    config = fast_config()
    with loaded.connect(TRAINER_USER) as trainer:
        before = load_dataset(trainer, config, CUTOFF)
    # Each user's last advance: a snapshot after it precedes no other advance of the user.
    last: dict[str, object] = {}
    for r in before.rows:
        last[r.user_id] = max(last.get(r.user_id, r.issued_at), r.issued_at)
    outcomes = sorted(last.items())
    # 1e6 in every numeric feature; categorical ones keep a category they know
    poison = {name: 1e6 if name not in before.spec.categories else
              before.spec.categories[name][0] for name in before.feature_names}
    numeric = [j for j in range(len(before.spec)) if not before.spec.is_categorical(j)]
    with loaded.connect() as conn, conn.cursor() as cur:
        # Snapshots at the very instant of issue and after it.
        cur.executemany(
            "INSERT INTO blink.feature_store_snapshots (user_id, snapshot_at, features) "
            "VALUES (%s, %s, %s)",
            [(u, at + delta, Jsonb(poison)) for u, at in outcomes
             for delta in (timedelta(0), timedelta(microseconds=1), timedelta(days=1))])
    with loaded.connect(TRAINER_USER) as trainer:
        after = load_dataset(trainer, config, CUTOFF)
    assert [r.snapshot_id for r in after.rows] == [r.snapshot_id for r in before.rows]
    np.testing.assert_array_equal(after.X, before.X)
    np.testing.assert_array_equal(after.y, before.y)
    assert not (after.X == 1e6).any()

    # Control: a snapshot one microsecond *before* issue does change that advance's row.
    user, at = outcomes[0]
    with loaded.connect() as conn:
        conn.execute("INSERT INTO blink.feature_store_snapshots (user_id, snapshot_at, features)"
                     " VALUES (%s, %s, %s)", [user, at - timedelta(microseconds=1),
                                              Jsonb(poison)])
    with loaded.connect(TRAINER_USER) as trainer:
        control = load_dataset(trainer, config, CUTOFF)
    changed = np.flatnonzero((control.X[:, numeric] == 1e6).all(axis=1))
    assert [(control.rows[i].user_id, control.rows[i].issued_at) for i in changed] == [(user, at)]


def test_promotion_gate_both_ways_recorded_in_deployment_history(loaded, weak, tmp_path):
    config = fast_config()
    with loaded.connect() as conn:
        weak_id = install(conn, weak)
    with loaded.connect(TRAINER_USER) as trainer:
        first = run(trainer, config, RunOptions(cutoff=CUTOFF, deploy=True, output_dir=tmp_path))
        second = run(trainer, config, RunOptions(cutoff=CUTOFF, deploy=True,
                                                 output_dir=tmp_path))
    assert first.decision.decision == "promoted"
    assert first.metrics["roc_auc"] > first.champion_metrics["roc_auc"] + 0.005
    # Same data and seed: an identical model, so no gain, so no promotion.
    assert second.artifact.model_text == first.artifact.model_text
    assert second.decision.decision == "refused"
    assert second.decision.reason.startswith("not better: ROC AUC")
    with loaded.connect() as conn:
        champion = conn.execute("SELECT model_id FROM blink_champion()").fetchone()[0]
        history = conn.execute(
            "SELECT event, model_id, previous_model_id, reason, candidate_roc_auc, "
            "champion_roc_auc, window_start, window_end FROM blink.blink_deployment_history "
            "ORDER BY event_at").fetchall()
        deployments = conn.execute("SELECT count(*) FROM blink.blink_deployments").fetchone()[0]
    assert champion == first.model_id
    assert deployments == 2  # the weak model, then the first candidate; no refusal rows
    assert [(e, m, p) for e, m, p, *_ in history] == [
        ("promoted", weak_id, None), ("promoted", first.model_id, weak_id),
        ("refused", second.model_id, first.model_id)]
    _, _, _, reason, cand_auc, champ_auc, start, end = history[2]
    assert reason == second.decision.reason
    assert cand_auc == pytest.approx(champ_auc)  # the same model on the same window
    assert history[1][6:] == history[2][6:]  # both judged on the same out-of-time window


def test_model_row_holds_artifacts_hashes_metrics_and_report(loaded, tmp_path):
    with loaded.connect(TRAINER_USER) as trainer:
        result = run(trainer, fast_config(), RunOptions(cutoff=CUTOFF, output_dir=tmp_path))
    assert result.decision.decision == "evaluated"  # no --deploy: nothing promoted
    with loaded.connect() as conn:
        row = conn.execute(
            "SELECT version, model_text, model_text_sha256, treelite_model, "
            "treelite_model_sha256, compiled_lib_sha256, report_html, metrics, "
            "library_versions, decision_threshold FROM blink.blink_models WHERE id = %s",
            [result.model_id]).fetchone()
        champion = conn.execute("SELECT count(*) FROM blink.blink_deployments").fetchone()[0]
    version, text, text_sha, tl, tl_sha, lib_sha, report, metrics, versions, threshold = row
    assert champion == 0
    assert text_sha == hashlib.sha256(text.encode()).hexdigest()
    assert tl_sha == hashlib.sha256(tl).hexdigest()
    directory = tmp_path / version
    assert (directory / "model.so").read_bytes() and hashlib.sha256(
        (directory / "model.so").read_bytes()).hexdigest() == lib_sha
    assert (directory / "model.txt").read_text() == text
    assert (directory / "report.html").read_text() == report
    assert re.findall(r'<img alt="(\w+)" src="data:image/png;base64,', report) == [
        *PLOTS, *SHAP_PLOTS]
    for key in ("roc_auc", "pr_auc", "ks", "brier", "log_loss", "importance_gain", "window",
                "splits", "decision_threshold", "bands", "parity_max_abs_diff"):
        assert key in metrics, key
    assert metrics["parity_max_abs_diff"] <= 1e-6
    assert len(metrics["test"]["calibration"]) == 10
    assert metrics["window"]["test"]["from"] > metrics["window"]["valid"]["to"]
    assert metrics["window"]["valid"]["from"] > metrics["window"]["train"]["to"]
    assert threshold == pytest.approx(metrics["decision_threshold"])
    assert set(versions) >= {"lightgbm", "treelite", "tl2cgen"}


def test_dry_run_writes_nothing_and_force_promotes_regardless(loaded, weak, tmp_path):
    with loaded.connect() as conn:
        install(conn, weak)
    config = fast_config(min_auc_gain=0.5)  # a gate no model can pass
    with loaded.connect() as conn:
        start = counts(conn)
    with loaded.connect(TRAINER_USER) as trainer:
        dry = run(trainer, config, RunOptions(cutoff=CUTOFF, dry_run=True, output_dir=tmp_path))
        assert dry.model_id is None and not dry.gate.passed
        with loaded.connect() as conn:
            assert counts(conn) == start
        assert list(tmp_path.iterdir()) == []
        forced = run(trainer, config, RunOptions(cutoff=CUTOFF, force=True,
                                                 output_dir=tmp_path))
    assert forced.decision.decision == "promoted"
    assert forced.decision.reason.startswith("forced (--force) despite: not better")
    with loaded.connect() as conn:
        assert conn.execute("SELECT model_id FROM blink_champion()").fetchone()[0] == \
            forced.model_id
        assert conn.execute("SELECT forced, gate_passed FROM blink.blink_promotion_reviews"
                            ).fetchall() == [(True, False)]


def _cli(db, tmp_path, *extra):
    return cli.main(["--deploy", "--quiet", "--dsn", db.dsn(TRAINER_USER), "--cutoff",
                     CUTOFF.isoformat(), "--output-dir", str(tmp_path), "--max-rounds", "50",
                     *extra])


def _assert_untouched(db, tmp_path, start):
    with db.connect() as conn:
        assert counts(conn) == start
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_too_little_data_exits_3_and_writes_nothing(db, tmp_path, caplog):
    with db.connect() as conn:
        load(conn, small_history(users=15))
        start = counts(conn)
    assert _cli(db, tmp_path) == 3
    assert "too little data" in caplog.text
    _assert_untouched(db, tmp_path, start)


def test_single_class_exits_3_and_writes_nothing(db, history, tmp_path, caplog):
    history = small_history(users=200)
    for o in history.outcomes:
        o["outcome"] = "repaid"
    with db.connect() as conn:
        load(conn, history)
        start = counts(conn)
    assert _cli(db, tmp_path) == 3
    assert "single class" in caplog.text
    _assert_untouched(db, tmp_path, start)


def test_text_in_a_numeric_feature_exits_3_naming_it_and_writes_nothing(loaded, history,
                                                                       tmp_path, caplog):
    target = history.outcomes[100]
    with loaded.connect() as conn:
        conn.execute(
            "INSERT INTO blink.feature_store_snapshots (user_id, snapshot_at, features) "
            "VALUES (%s, %s, %s)",
            [target["user_id"], target["issued_at"] - timedelta(seconds=1),
             Jsonb({"metric_total_balance": "1,200.00"})])
        start = counts(conn)
    assert _cli(loaded, tmp_path) == 3
    err = caplog.text
    assert "feature metric_total_balance mixes numbers and text" in err
    assert '"1,200.00" in snapshot' in err and repr(target["user_id"]) in err
    _assert_untouched(loaded, tmp_path, start)


def test_feature_missing_everywhere_exits_3_and_writes_nothing(loaded, tmp_path, caplog):
    config = tmp_path.parent / "features.toml"
    config.write_text('features = ["metric_median_paycheck", "metric_not_collected"]\n')
    with loaded.connect() as conn:
        start = counts(conn)
    assert _cli(loaded, tmp_path, "--config", str(config)) == 3
    assert "metric_not_collected have no value" in caplog.text
    _assert_untouched(loaded, tmp_path, start)


def test_database_errors_exit_4(db, tmp_path, caplog):
    bad_dsn = db.dsn("nobody_here")
    assert cli.main(["--quiet", "--dsn", bad_dsn, "--output-dir", str(tmp_path)]) == 4
    assert "cannot connect" in caplog.text


def test_trainer_role_reads_outcomes_but_cannot_write_them(loaded):
    with loaded.connect(TRAINER_USER) as trainer:
        assert trainer.execute("SELECT count(*) FROM blink.repayment_outcomes").fetchone()[0] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            trainer.execute("INSERT INTO blink.repayment_outcomes (user_id, issued_at, due_at, "
                            "outcome, observed_at) VALUES ('x', now(), now(), 'repaid', now())")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            trainer.execute("UPDATE blink.blink_promotion_reviews SET reason = 'x'")
