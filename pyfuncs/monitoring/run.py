"""blink_monitor_run(): one bounded monitoring run inside the database.

Reads the policy and the live models, measures every cohort not measured yet (oldest first,
at most ``max_cohorts_per_run`` per model and kind, stopping at ``max_seconds``), records the
figures, then lets :func:`pyfuncs.monitoring.policy.decide` say what to do and does it:
events (and NOTIFY), retrain requests, promotions and rollbacks through blink's own
deployment functions, each citing the runs behind it. All in the caller's transaction.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timedelta

import numpy as np

from pyfuncs import queries
from pyfuncs._typing import Any
from pyfuncs.decision import DecisionPolicy
from pyfuncs.errors import BlinkError, FeatureError, InvalidArgumentError
from pyfuncs.features import FeatureSpec, parse_document
from pyfuncs.monitoring import evaluate
from pyfuncs.monitoring.evaluate import Cohort, Metric
from pyfuncs.monitoring.policy import Action, Live, Policy, decide

CHANNEL = "blink_monitoring"


class _Model:
    """What monitoring needs of a model: features, decision rule, reference."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.id = int(row["id"])
        self.version = row["version"]
        self.spec = FeatureSpec.from_json(row["feature_names"], row["feature_categories"])
        rule = DecisionPolicy.from_model(row["decision_threshold"], json.loads(row["risk_bands"]))
        self.bands = list(rule.bands)
        self.reference = json.loads(row["reference"]) if row["reference"] else None


def _ts(value: Any) -> datetime:
    """A timestamptz from PL/Python (text) as an aware datetime."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace(" ", "T"))


def _interval(td: timedelta) -> str:
    return f"{td.total_seconds()} seconds"


def _matrix(spec: FeatureSpec, documents: list[str]) -> np.ndarray:
    rows = []
    for text in documents:
        try:
            rows.append(spec.vector(parse_document(text), allow_unknown=True,
                                    where="in an audit"))
        except (FeatureError, ValueError):
            rows.append([math.nan] * len(spec))  # not scorable now: counts as missing
    return np.array(rows, dtype=float).reshape(len(documents), len(spec))


def _live(plpy: Any, GD: dict) -> Live:
    row = queries.one(plpy, GD, "monitor_live")
    assert row is not None
    shadows = {int(k): (None if v is None else _ts(v))
               for k, v in json.loads(row["shadows"]).items()}
    return Live(
        champion=None if row["champion"] is None else int(row["champion"]),
        champion_since=None if row["champion_since"] is None else _ts(row["champion_since"]),
        previous=None if row["previous"] is None else int(row["previous"]),
        shadows=shadows, never_auto=frozenset(int(m) for m in row["never_auto"] or []),
        pending_retrain=bool(row["pending_retrain"]),
        champion_inputs_measured=bool(row["champion_inputs_measured"]))


def monitor(plpy: Any, GD: dict, as_of: Any, max_seconds: float,
            recompute: bool) -> dict[str, Any]:
    """One monitoring run; returns its summary (also stored in blink.monitoring_runs)."""
    if not (max_seconds > 0):
        raise InvalidArgumentError(f"max_seconds must be positive, got {max_seconds}")
    clock = time.monotonic()
    lock = queries.one(plpy, GD, "monitor_lock")
    assert lock is not None
    if lock["standby"]:
        return {"ran": False, "reason": "this server is a standby (read-only): monitoring "
                                        "runs on the primary"}
    if not lock["locked"]:
        return {"ran": False, "reason": "another blink_monitor_run() is in progress"}
    as_of_ts = _ts(as_of)
    policy = Policy.from_row(queries.one(plpy, GD, "monitoring_policy") or {})
    summary: dict[str, Any] = {"ran": True, "as_of": as_of_ts.isoformat(), "mode": policy.mode,
                               "kill_switch": policy.kill_switch, "recompute": recompute}
    if policy.mode == "off":
        summary["reason"] = "monitoring is off (blink.monitoring_policy.mode)"
        summary["run_id"] = _insert_run(plpy, GD, lock["started_at"], as_of, policy, "off",
                                        summary)
        return summary
    live = _live(plpy, GD)
    watched = ([live.champion] if live.champion is not None else []) + sorted(
        m for m in live.shadows if m != live.champion)
    models = {int(r["id"]): _Model(r) for r in queries.run(plpy, GD, "monitor_models", watched)}
    metrics: list[Metric] = []
    complete = True
    for model_id in watched:
        for kind in ("inputs", "outcomes"):
            for cohort in _cohorts(plpy, GD, model_id, kind, policy, as_of, recompute):
                if time.monotonic() - clock >= max_seconds:
                    complete = False
                    break
                metrics.extend(_measure(plpy, GD, models, live, model_id, cohort, policy,
                                        as_of))
    status = "done" if complete else "partial"
    summary.update(models=watched, cohorts=len({(m.model_id, m.cohort) for m in metrics}),
                   metrics=len(metrics), breaches=sum(m.breach for m in metrics),
                   complete=complete)
    run_id = _insert_run(plpy, GD, lock["started_at"], as_of, policy, status, summary)
    if metrics:
        queries.run(plpy, GD, "insert_monitoring_metrics", run_id,
                    json.dumps([_jsonable(m.row()) for m in metrics]))
    actions: list[Action] = []
    if not recompute:  # re-measuring cohorts records figures; it never acts twice
        def history(model_id: int, metric: str, compared: int | None,
                    before: datetime) -> list[tuple[str, int]]:
            rows = queries.run(plpy, GD, "metric_history", model_id, metric, compared, before)
            return [(r["status"], int(r["run_id"])) for r in rows]

        actions = decide(policy, live, metrics, history, as_of_ts, _ts(lock["started_at"]))
        shard = queries.one(plpy, GD, "is_shard")
        if shard is not None and shard["shard"]:
            actions = _on_a_shard(actions)
    summary["run_id"] = run_id
    summary["actions"] = [_carry_out(plpy, GD, run_id, a) for a in actions]
    summary["seconds"] = round(time.monotonic() - clock, 3)
    return summary


def _on_a_shard(actions: list[Action]) -> list[Action]:
    """A shard's models, deployments and shadows arrive from the model home, which ends
    probations and changes champions itself: here those actions are reported, not done."""
    out = []
    for a in actions:
        if a.kind == "end_probation":
            continue  # the home's own run ends it; the row's removal replicates here
        if a.kind in ("promote", "rollback") and not a.withheld:
            a.withheld = "this database is a shard: models change at the model home"
        out.append(a)
    return out


def _insert_run(plpy: Any, GD: dict, started_at: Any, as_of: Any, policy: Policy,
                status: str, summary: dict[str, Any]) -> int:
    mode = "alert" if policy.mode == "auto" and policy.kill_switch else policy.mode
    row = queries.one(plpy, GD, "insert_monitoring_run", started_at, as_of, mode, status,
                      json.dumps(summary, default=str))
    assert row is not None
    return int(row["id"])


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out


def _cohorts(plpy: Any, GD: dict, model_id: int, kind: str, policy: Policy, as_of: Any,
             recompute: bool) -> list[Cohort]:
    args: list[Any] = [model_id, _interval(policy.cohort), as_of, _interval(policy.lookback),
                       recompute]
    if kind == "outcomes":
        args.append(_interval(policy.grace))
    rows = queries.run(plpy, GD, f"{kind}_cohorts", *args)
    cohorts = [Cohort(kind, _ts(r["start"]), _ts(r["end"])) for r in rows]
    n = policy.max_cohorts_per_run
    return cohorts[-n:] if recompute else cohorts[:n]


def _inputs_rows(plpy: Any, GD: dict, model: _Model, cohort: Cohort
                 ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    row = queries.one(plpy, GD, "inputs_rows", model.id, cohort.start, cohort.end)
    assert row is not None
    return (list(row["users"]), _matrix(model.spec, list(row["features"])),
            np.asarray(row["p"], dtype=float), np.asarray(row["approved"], dtype=bool))


def _outcome_rows(plpy: Any, GD: dict, model_id: int, cohort: Cohort, policy: Policy,
                  as_of: Any) -> dict[int, tuple[int, float]]:
    row = queries.one(plpy, GD, "outcome_rows", model_id, cohort.start, cohort.end,
                      _interval(policy.grace), as_of)
    assert row is not None
    return {int(k): (int(b), float(p)) for k, b, p in zip(row["loans"], row["bad"], row["p"],
                                                            strict=True)}


def _measure(plpy: Any, GD: dict, models: dict[int, _Model], live: Live, model_id: int,
             cohort: Cohort, policy: Policy, as_of: Any) -> list[Metric]:
    model = models[model_id]
    champion = models.get(live.champion) if live.champion is not None else None
    if cohort.kind == "inputs":
        users, X, p, approved = _inputs_rows(plpy, GD, model, cohort)
        if model.reference is None:
            out = [Metric(model.id, cohort, "rows", len(p), value=float(len(p)),
                          status=evaluate.INSUFFICIENT,
                          detail={"why": "the model has no monitoring reference"})]
        else:
            out = evaluate.inputs(model.id, cohort, model.reference, model.spec.names, X, p,
                                  approved, policy)
        if champion is not None and champion.id != model.id:
            c_users, _, _, c_approved = _inputs_rows(plpy, GD, champion, cohort)
            mine = dict(zip(users, approved, strict=True))
            both = [(a, mine[u]) for u, a in zip(c_users, c_approved, strict=True) if u in mine]
            if both:
                pairs = np.array(both, dtype=bool)
                out += evaluate.agreement(model.id, champion.id, cohort, pairs[:, 0],
                                          pairs[:, 1], policy)
        return out
    loans: dict[int, tuple[int, float]] = _outcome_rows(plpy, GD, model.id, cohort, policy,
                                                         as_of)
    y = np.array([b for b, _ in loans.values()], dtype=float)
    p = np.array([q for _, q in loans.values()], dtype=float)
    out = evaluate.outcomes(model.id, cohort, model.reference, y, p, model.bands, policy)
    if champion is not None and champion.id != model.id:
        ref = (champion.reference or {}).get("outcomes") or {}
        needed = evaluate.min_outcome_rows(ref.get("roc_auc", 0.75),
                                           ref.get("default_rate", 0.1), policy)
        windows = []
        for window in evaluate.paired_span(cohort, policy, model.id == live.probation):
            own = loans if window == cohort else _outcome_rows(plpy, GD, model.id, window,
                                                               policy, as_of)
            theirs = _outcome_rows(plpy, GD, champion.id, window, policy, as_of)
            common = sorted(set(own) & set(theirs))
            windows.append(evaluate.PairedWindow(
                window, np.array([own[k][0] for k in common], dtype=float),
                np.array([theirs[k][1] for k in common]), np.array([own[k][1] for k in common])))
        out.append(evaluate.paired(model.id, champion.id, windows, policy, needed))
    return out


def _carry_out(plpy: Any, GD: dict, run_id: int, action: Action) -> dict[str, Any]:
    """Record an action as an event (NOTIFY for alerts and actions) and carry it out."""
    from pyfuncs import deploy

    cited = sorted({run_id if r is None else r for r in action.cited_runs} or {run_id})
    message = action.message
    if action.withheld and action.kind not in ("alert", "info"):
        message = f"not done ({action.withheld}): {message}"
    cohort = action.cohorts[-1] if action.cohorts else None
    done: dict[str, Any] = {"kind": action.kind, "rule": action.rule, "model_id":
                            action.model_id, "withheld": action.withheld, "message": message}
    if action.kind not in ("alert", "info") and not action.withheld:
        reason = f"{message} [monitoring runs {', '.join(map(str, cited))}]"
        deployment_id = request_id = None
        try:
            if action.kind == "promote":
                assert action.model_id is not None
                deployment_id = int(deploy.promote(plpy, GD, action.model_id, reason)["id"])
            elif action.kind == "rollback":
                deployment_id = int(deploy.rollback(plpy, GD, reason)["id"])
            elif action.kind == "retrain_request":
                row = queries.one(plpy, GD, "insert_retrain_request", run_id, action.model_id,
                                  [action.rule], reason)
                assert row is not None
                request_id = int(row["id"])
            elif action.kind == "end_probation":
                queries.run(plpy, GD, "end_probation", action.model_id)
        except BlinkError as exc:  # e.g. the model no longer vets: say so, change nothing
            done["failed"] = str(exc)
            message = f"failed ({exc}): {message}"
        else:
            row = queries.one(plpy, GD, "insert_monitoring_action", run_id, action.kind,
                              action.rule, action.model_id, deployment_id, request_id, cited,
                              reason)
            assert row is not None
            done.update(action_id=int(row["id"]), deployment_id=deployment_id,
                        retrain_request_id=request_id)
    severity = "alert" if "failed" in done else action.severity
    event = queries.one(plpy, GD, "insert_monitoring_event", run_id, action.model_id, severity,
                        action.rule, cohort.kind if cohort else None,
                        cohort.start if cohort else None, message,
                        json.dumps({**action.detail, "cited_runs": cited,
                                    **{k: v for k, v in done.items() if k.endswith("_id")}},
                                   default=str))
    assert event is not None
    done["event_id"] = int(event["id"])
    if severity != "info":
        queries.run(plpy, GD, "notify_monitoring", json.dumps({
            "event_id": done["event_id"], "run_id": run_id, "severity": severity,
            "rule": action.rule, "model_id": action.model_id, "message": message[:500]}))
    return done
