"""`make demo`: blink's main job end to end on the project-local cluster.

1. starts (or reuses) the cluster and migrates it to head;
2. loads a synthetic lending history: weekly feature snapshots (numbers, text and a
   boolean), cash advances and their outcomes;
3. trains with the trainer, exactly as `blink train --deploy` does: point-in-time join,
   out-of-time test, promotion gate, artifacts and report; the model is vetted and promoted;
4. scores a few users as the application role (score, decision, band, top reason);
5. runs one rescoring pass, which audits every user's latest snapshot with reason codes, and
   one monitoring run (blink_monitor_run), and writes the monitoring report;
6. prints a summary and the next commands to try.

A second run reuses the data and the model it finds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devenv import migrate
from devenv.cluster import LocalCluster

APP_ROLE = "blink_demo_app"


@dataclass
class DemoSize:
    """How much history the demo makes; the defaults finish in a couple of minutes."""

    users: int = 1500
    weeks: int = 20
    seed: int = 7
    max_rounds: int = 300
    show: int = 6  # users printed

    def key(self) -> str:
        """Same size, same data, same model version: what lets a second run reuse them."""
        raw = json.dumps([self.users, self.weeks, self.seed, self.max_rounds, "loop-v1"])
        return hashlib.sha256(raw.encode()).hexdigest()[:10]


@dataclass
class DemoSummary:
    """What the demo did, for the printout and for tests."""

    loaded: tuple[int, int] | None  # (snapshots, outcomes) loaded now, None when reused
    model_id: int
    version: str
    trained_now: bool
    out_of_time_auc: float
    test_rows: int
    decision: str
    report: str | None
    users: list[dict[str, Any]] = field(default_factory=list)
    rescore: dict[str, Any] = field(default_factory=dict)
    monitor: dict[str, Any] = field(default_factory=dict)
    monitor_report: str | None = None


def ensure_app_role(conn: Any) -> None:
    conn.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} LOGIN;
            END IF;
        END $$""")
    conn.execute(f"GRANT blink_app TO {APP_ROLE}")


# Reason texts for the synthetic data's categorical features: one per feature, and some
# specific to a category (blink.reason_codes.category), as a lender would write them.
DEMO_REASONS = [
    ("housing", None, "RC10", "Housing situation"),
    ("housing", "rent", "RC11", "Renting rather than owning a home"),
    ("employment_type", None, "RC12", "Type of employment"),
    ("employment_type", "gig", "RC13", "Income from gig work varies from week to week"),
    ("direct_deposit", None, "RC14", "How income is received"),
    ("direct_deposit", "false", "RC15", "Income is not received by direct deposit"),
]


def add_reason_texts(conn: Any) -> None:
    """The demo's reason texts, unless the feature already has some (the owner's edits win)."""
    for feature, category, code, text in DEMO_REASONS:
        conn.execute(
            "INSERT INTO blink.reason_codes (feature_name, category, code, reason_text) "
            "SELECT %s, %s, %s, %s WHERE NOT EXISTS (SELECT FROM blink.reason_codes "
            "WHERE code = %s OR feature_name = %s AND category IS NOT DISTINCT FROM %s)",
            [feature, category, code, text, code, feature, category])


def load_history(conn: Any, size: DemoSize, today: datetime) -> tuple[int, int] | None:
    """Load the synthetic history unless outcomes are already there (a second run)."""
    from trainer import ingest, synthetic

    if _one(conn, "SELECT EXISTS (SELECT FROM blink.repayment_outcomes)"):
        return None
    if _one(conn, "SELECT EXISTS (SELECT FROM blink.feature_store_snapshots)"):
        print("blink: note: this database has snapshots but no outcomes (an older demo?); "
              "the history is added next to them. `make stop` and removing the cluster "
              "directory starts afresh.")
    history = synthetic.generate_history(size.users, start=today - timedelta(weeks=size.weeks),
                                         weeks=size.weeks, seed=size.seed)
    return ingest.load_history(conn, history)


def train(conn: Any, size: DemoSize, models_dir: Path,
          progress: bool) -> tuple[int, bool, dict, str, str | None]:
    """Train and promote with the trainer, or reuse the demo's model of this size.

    Returns (model id, trained now, metrics, gate decision, report path).
    """
    from trainer import registry
    from trainer.config import TrainerConfig
    from trainer.pipeline import RunOptions, run

    version = f"demo-{size.key()}"
    model_id = registry.model_id_by_version(conn, version)
    if model_id is not None:
        metrics = _one(conn, "SELECT metrics FROM blink.blink_models WHERE id = %s", [model_id])
        if registry.champion_id(conn) != model_id:
            registry.promote(conn, model_id, "make demo: the demo's model")
            registry.refresh_feature_vectors(conn)
        report = models_dir / version / "report.html"
        return (model_id, False, metrics, "champion",
                str(report) if report.exists() else None)
    config = TrainerConfig(max_rounds=size.max_rounds, seed=size.seed).validate()
    # force: a cluster from an older demo may hold a champion this history never saw.
    has_champion = registry.champion_id(conn) is not None
    options = RunOptions(deploy=not has_champion, force=has_champion, output_dir=models_dir,
                         version=version, progress=progress)
    result = run(conn, config, options)
    assert result.model_id is not None and result.decision is not None
    return (result.model_id, True, result.metrics, result.decision.decision,
            str(result.files["report"]))


def score_users(app_dsn: str, user_ids: list[str]) -> list[dict[str, Any]]:
    """Score, decision, band, top reason and latency of each user, as the application role."""
    import psycopg

    rows = []
    with psycopg.connect(app_dsn, autocommit=True) as app:
        app.execute("SELECT blink_score(%s)", [user_ids[0]])  # the session loads the model once
        for user in user_ids:
            start = time.perf_counter()
            probability = _one(app, "SELECT blink_score(%s)", [user])
            latency_ms = (time.perf_counter() - start) * 1000
            decided = app.execute("SELECT decision, risk_band FROM blink_decide(%s)",
                                  [user]).fetchone()
            reason = app.execute(
                "SELECT reason_code, reason_text, feature_name, "
                "coalesce(feature_category, feature_value::text) FROM blink_explain(%s) "
                "WHERE rank = 1", [user]).fetchone()
            rows.append({"user_id": user, "probability": probability,
                         "decision": decided[0] if decided else None,
                         "band": decided[1] if decided else None,
                         "reason": reason, "latency_ms": latency_ms})
    return rows


def run_demo(dsn: Callable[..., str], size: DemoSize, models_dir: Path,
             progress: bool = False) -> DemoSummary:
    """Steps 1-5 of the module docstring on a running server; returns what happened.

    ``dsn(user=...)`` gives the database's URL for a role (the superuser by default).
    """
    import psycopg

    migrate.upgrade(dsn())
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(dsn(), autocommit=True) as conn:
        ensure_app_role(conn)
        add_reason_texts(conn)
        loaded = load_history(conn, size, today)
        model_id, trained_now, metrics, decision, report = train(conn, size, models_dir,
                                                                 progress)
        version = _one(conn, "SELECT version FROM blink.blink_models WHERE id = %s", [model_id])
    users = [f"user-{i}" for i in range(0, size.users, max(1, size.users // size.show))]
    summary = DemoSummary(loaded, model_id, version, trained_now, float(metrics["roc_auc"]),
                          int(metrics["test"]["rows"]), decision, report)
    summary.users = score_users(dsn(user=APP_ROLE), users[:size.show])
    with psycopg.connect(dsn(), autocommit=True) as conn:
        summary.rescore = _one(conn, "SELECT blink_rescore_pending()")
        summary.monitor = _one(conn, "SELECT blink_monitor_run()")
        from trainer import monitor_report

        summary.monitor_report = str(monitor_report.write(
            conn, models_dir / "monitoring-report.html"))
    return summary


def _one(conn: Any, sql: str, args: list[Any] | None = None) -> Any:
    """The single value of a one-row query."""
    row = conn.execute(sql, args).fetchone()
    assert row is not None, sql
    return row[0]


def render(summary: DemoSummary) -> str:
    lines = []
    if summary.loaded:
        lines.append(f"history: {summary.loaded[0]:,} feature snapshots and "
                     f"{summary.loaded[1]:,} advances with outcomes loaded")
    else:
        lines.append("history: reused (already loaded)")
    how = "trained now by the trainer" if summary.trained_now else "reused"
    lines.append(f"model {summary.model_id} ({summary.version}, {how}, {summary.decision}): "
                 f"out-of-time ROC AUC {summary.out_of_time_auc:.3f} on "
                 f"{summary.test_rows:,} later advances")
    lines.append("")
    lines.append(f"{'user':<11}{'score':>8}  {'decision':<9}{'band':<5}{'latency':>9}  "
                 "top reason (feature = value)")
    for u in summary.users:
        code, text, feature, value = u["reason"] or ("", "", "", None)
        shown = "missing" if value is None else value
        lines.append(f"{u['user_id']:<11}{u['probability']:>8.4f}  {u['decision'] or '':<9}"
                     f"{u['band'] or '':<5}{u['latency_ms']:>7.2f}ms  {code} {text} "
                     f"({feature} = {shown})")
    lines.append("")
    r = summary.rescore
    lines.append(f"rescoring: {r.get('scored', 0):,} users audited with reason codes, "
                 f"{r.get('quarantined', 0)} quarantined (blink.risk_score_audits)")
    m = summary.monitor
    lines.append(f"monitoring: run {m.get('run_id')} measured {m.get('cohorts', 0)} closed "
                 f"cohort(s), {len(m.get('actions', []))} finding(s); mode "
                 f"{m.get('mode')} (blink.monitoring_status, docs/monitoring.md)")
    if summary.report:
        lines.append(f"model report: {summary.report}")
    if summary.monitor_report:
        lines.append(f"monitoring report: {summary.monitor_report}")
    user = summary.users[0]["user_id"]
    lines += [
        "",
        "Next:",
        f"  make psql   then  SELECT * FROM blink_explain('{user}');",
        "  make train ARGS=--deploy               retrain; promotes only a better model",
        f"  make blink ARGS='report --user {user}'   one user's SHAP picture",
        "  make blink ARGS=--help                 every blink command",
        "  make stop                              stop the cluster",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", action="store_true", help="print the cluster's DSN and exit")
    parser.add_argument("--stop", action="store_true", help="stop the cluster and exit")
    parser.add_argument("--users", type=int, default=DemoSize.users, help="synthetic users")
    parser.add_argument("--weeks", type=int, default=DemoSize.weeks, help="weeks of history")
    parser.add_argument("--models-dir", type=Path, default=Path("models"),
                        help="where the trainer writes artifacts and the report")
    args = parser.parse_args(argv)
    cluster = LocalCluster()

    if args.dsn or args.stop:
        if not (cluster.root / "port").exists():
            print("blink: no demo cluster yet; run `make demo` first", file=sys.stderr)
            return 1
        if args.dsn:
            print(cluster.dsn())
        elif cluster.stop():
            print("blink: demo cluster stopped")
        return 0

    print(f"blink: starting the project-local cluster in {cluster.root}")
    size = DemoSize(users=args.users, weeks=args.weeks)
    cluster.start()
    summary = run_demo(cluster.dsn, size, args.models_dir, progress=sys.stderr.isatty())
    print()
    print(render(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
