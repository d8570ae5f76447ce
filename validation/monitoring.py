"""Many-seed validation of monitoring on synthetic histories, without a database.

Each scenario trains a champion (and maybe a challenger) with the trainer's own code on 20
weeks of history, then runs monitoring once a week for 26 weeks with exactly the functions
blink_monitor_run uses (pyfuncs.monitoring.evaluate and .policy), in mode auto. Scores stand
in for audits: each model's probability of each snapshot, as rescoring would write it.

    python -m validation.monitoring [--seeds 10] [--out validation/results/monitoring.json]

(``make validate``). tests/unit/test_monitoring_validation.py runs a fast version of each
scenario. Not modelled: selective labels (every synthetic advance has an outcome, whoever
the champion would have declined); docs/monitoring.md discusses them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from pyfuncs.features import FeatureSpec
from pyfuncs.monitoring import evaluate
from pyfuncs.monitoring.evaluate import Cohort, Metric
from pyfuncs.monitoring.policy import Action, Live, Policy, decide
from trainer import synthetic
from trainer.config import TrainerConfig
from trainer.dataset import OutcomeRow, build_dataset
from trainer.monitoring import documents_matrix
from trainer.monitoring import reference as build_reference
from trainer.pipeline import candidate_metrics
from trainer.training import train_early_stopped

START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday: cohorts are Monday-aligned weeks
WEEK = timedelta(weeks=1)
TRAIN_WEEKS = 20
MONITOR_WEEKS = 26
DEPLOYED = START + TRAIN_WEEKS * WEEK
POLICY = Policy(mode="auto")
# The run (week index) that first sees a matured window: loans issued in week 0 are due two
# weeks later and mature 30 days after that, so the run at the end of week 7 measures them.
FIRST_MATURED_RUN = 7
CONFIG = TrainerConfig(max_rounds=200, early_stopping_rounds=20)
# Covariate drift on three features nothing else is derived from.
DRIFT_FEATURES = ["metric_debt_load30", "metric_median_paycheck", "metric_total_balance"]
DERIVED = {"metric_median_paycheck": {"metric_transaction_count90"}}
STRONG = ["metric_overdraft_count90", "metric_debt_load30", "metric_volatility90",
          "metric_clean_buffer7"]


@dataclass
class Scenario:
    """A history and the models watching it."""

    name: str
    users: int = 1500
    history: dict[str, Any] = field(default_factory=dict)  # generate_history options
    champion_drops: list[str] = field(default_factory=list)  # features the champion lacks
    # A bad champion: its training extract put the key features' values under each other's
    # names (columns misaligned by a pipeline bug); in production it is scored on the right
    # ones. (Shuffling one feature alone hardly hurts here: the features are redundant.)
    misaligned: list[str] | None = None
    challenger: bool = False  # a full model in shadow from the start
    challenger_seed: int | None = None  # the challenger's training seed (default: as champion)
    previous_champion: bool = False  # the good model was champion before (now on probation)


def _at(week: int) -> datetime:
    return DEPLOYED + week * WEEK


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "stable": lambda: Scenario("stable"),
    "covariate": lambda: Scenario("covariate", history=dict(
        drift_at=_at(8), drift=1.0, drift_features=DRIFT_FEATURES, drift_logit=0.0)),
    "concept": lambda: Scenario("concept", history=dict(concept_drift_at=_at(4),
                                                        concept_drift=0.75)),
    "bad_model": lambda: Scenario("bad_model", misaligned=STRONG,
                                  previous_champion=True),
    "better_challenger": lambda: Scenario("better_challenger", champion_drops=STRONG + [
                                              "metric_total_balance"],
                                          challenger=True),
    "flapping": lambda: Scenario("flapping", challenger=True, challenger_seed=11, history=dict(
        drift_weeks=[TRAIN_WEEKS + w for w in range(0, MONITOR_WEEKS, 2)], drift=1.0)),
    "small": lambda: Scenario("small", users=286),
}


@dataclass
class Model:
    id: int
    booster: Any
    spec: FeatureSpec
    threshold: float
    bands: list[tuple[float, str]]
    reference: dict[str, Any]

    X: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # every snapshot, encoded
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # ... and scored


class World:
    """One seed's history, indexed for point-in-time lookups."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.history = synthetic.generate_history(
            scenario.users, start=START, weeks=TRAIN_WEEKS + MONITOR_WEEKS, seed=seed,
            **scenario.history)
        self.names = synthetic.FEATURES + list(synthetic.CATEGORICAL)
        snaps = self.history.snapshots
        self.snap_user = np.array([s[0] for s in snaps])
        self.snap_time = np.array([s[1].timestamp() for s in snaps])
        self.snap_docs = [s[2] for s in snaps]
        rows: dict[str, list[int]] = {}
        for i, u in enumerate(self.snap_user):
            rows.setdefault(u, []).append(i)
        self.by_user = {u: np.array(ix) for u, ix in rows.items()}
        loans = self.history.outcomes
        self.loan_issued = np.array([o["issued_at"].timestamp() for o in loans])
        self.loan_due = np.array([o["due_at"].timestamp() for o in loans])
        self.loan_observed = np.array([o["observed_at"].timestamp() for o in loans])
        self.loan_bad = np.array([o["outcome"] != "repaid" for o in loans], dtype=float)
        self.loan_snapshot = np.array([self._before(o["user_id"], o["issued_at"].timestamp())
                                       for o in loans])

    def _before(self, user: str, t: float) -> int:
        ix = self.by_user[user]
        k = int(np.searchsorted(self.snap_time[ix], t, side="left")) - 1
        return int(ix[k]) if k >= 0 else -1

    def training_rows(self, cutoff: datetime) -> list[OutcomeRow]:
        rows = []
        for i, o in enumerate(self.history.outcomes):
            if o["issued_at"] >= cutoff:
                break
            k = int(self.loan_snapshot[i])
            rows.append(OutcomeRow(i, o["user_id"], o["issued_at"], o["due_at"], o["outcome"],
                                   o["observed_at"], None if k < 0 else k,
                                   None if k < 0 else datetime.fromtimestamp(
                                       self.snap_time[k], UTC),
                                   None if k < 0 else self.snap_docs[k]))
        return rows

    def window_documents(self, start: str, end: str) -> list[dict[str, Any]]:
        lo, hi = datetime.fromisoformat(start).timestamp(), datetime.fromisoformat(end).timestamp()
        inside = np.flatnonzero((self.snap_time >= lo) & (self.snap_time <= hi))
        latest: dict[str, int] = {}
        for i in inside:
            latest[self.snap_user[i]] = int(i)  # snapshots are in time order
        return [self.snap_docs[latest[u]] for u in sorted(latest)]


def train(world: World, model_id: int, seed: int, drops: list[str] | None = None,
          misaligned: list[str] | None = None) -> Model:
    """A model trained by the trainer's code on the first TRAIN_WEEKS, with its reference."""
    names = [n for n in world.names if n not in (drops or [])]
    ds = build_dataset(world.training_rows(DEPLOYED), DEPLOYED,
                       grace=timedelta(days=CONFIG.grace_days), features=names,
                       valid_fraction=CONFIG.valid_fraction, test_fraction=CONFIG.test_fraction,
                       min_rows=CONFIG.min_rows, min_positives=CONFIG.min_positives)
    if misaligned:  # the training extract's columns rotate by one, in every period
        columns = [ds.spec.names.index(n) for n in misaligned]
        ds.X[:, columns] = ds.X[:, columns[1:] + columns[:1]]
    booster, _ = train_early_stopped(ds.part("train"), ds.part("valid"), ds.spec, seed=seed,
                                     max_rounds=CONFIG.max_rounds,
                                     early_stopping_rounds=CONFIG.early_stopping_rounds)
    metrics, p_test = candidate_metrics(ds, booster, CONFIG)
    window = ds.split.windows["test"]
    documents = world.window_documents(window["from"], window["to"])
    if misaligned:  # the trainer's reference comes through the same broken extract
        documents = [_rotate(d, misaligned) for d in documents]
    ref = build_reference(booster, ds.spec, documents,
                          decision_threshold=metrics["decision_threshold"],
                          risk_bands=CONFIG.risk_bands, window=window,
                          y_test=ds.part("test")[1], p_test=p_test)
    from pyfuncs.decision import DecisionPolicy

    bands = list(DecisionPolicy.from_model(metrics["decision_threshold"],
                                           CONFIG.risk_bands).bands)
    X = documents_matrix(ds.spec, world.snap_docs)
    return Model(model_id, booster, ds.spec, metrics["decision_threshold"], bands, ref, X,
                 np.asarray(booster.predict(X, num_threads=1)))


def _rotate(doc: dict[str, Any], names: list[str]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in names}
    for name, source in zip(names, names[1:] + names[:1], strict=True):
        if source in doc:
            out[name] = doc[source]
    return out


@dataclass
class SeedResult:
    """What monitoring did on one seed (weeks count from deployment; runs at each week's end)."""

    seed: int
    alerts: list[tuple[int, str, str]] = field(default_factory=list)  # (week, rule, message)
    requests: list[tuple[int, str]] = field(default_factory=list)  # (week, rule)
    changes: list[tuple[int, str, int]] = field(default_factory=list)  # (week, kind, model)
    drift_named: list[tuple[int, list[str]]] = field(default_factory=list)
    insufficient: int = 0
    estimates: list[dict[str, float]] = field(default_factory=list)  # per outcomes cohort
    realised_low: list[int] = field(default_factory=list)  # weeks with realised AUC breach
    estimated_low: list[int] = field(default_factory=list)


def simulate(scenario: Scenario, seed: int, weeks: int = MONITOR_WEEKS,
             policy: Policy = POLICY) -> SeedResult:
    """Run monitoring weekly over one seed's history; returns everything it did."""
    world = World(scenario, seed)
    champion = train(world, 1, seed, scenario.champion_drops, scenario.misaligned)
    models = {1: champion}
    shadows: dict[int, datetime | None] = {}
    previous = None
    if scenario.challenger:
        models[2] = train(world, 2, scenario.challenger_seed or seed)
        shadows[2] = None
    if scenario.previous_champion:  # the good model was champion; the bad one replaced it
        models[3] = train(world, 3, seed)
        previous, shadows[3] = 3, DEPLOYED + policy.probation
    live = Live(champion=1, champion_since=DEPLOYED, previous=previous, shadows=shadows)
    past: dict[tuple[int, str, int | None], list[tuple[datetime, str, int]]] = {}
    measured_outcomes: set[tuple[int, datetime]] = set()
    scores = {mid: m.scores for mid, m in models.items()}
    result = SeedResult(seed)
    pending_since: int | None = None
    estimated: dict[tuple[int, datetime], Metric] = {}

    def history(model_id: int, metric: str, compared: int | None,
                before: datetime) -> list[tuple[str, int]]:
        return [(s, r) for t, s, r in past.get((model_id, metric, compared), []) if t < before]

    for week in range(weeks):
        as_of = _at(week + 1)
        cohort = Cohort("inputs", _at(week), as_of)
        metrics: list[Metric] = []
        watched = [live.champion] + [m for m in live.shadows if m != live.champion]
        inside = np.flatnonzero((world.snap_time >= cohort.start.timestamp())
                                & (world.snap_time < cohort.end.timestamp()))
        latest: dict[str, int] = {}
        for i in inside:
            latest[world.snap_user[i]] = int(i)
        rows = np.array([latest[u] for u in sorted(latest)], dtype=int)
        for mid in watched:
            assert mid is not None
            model = models[mid]
            p = scores[mid][rows]
            metrics += evaluate.inputs(mid, cohort, model.reference, model.spec.names,
                                       model.X[rows], p, p < model.threshold, policy)
            if mid != live.champion and live.champion is not None:
                c = models[live.champion]
                metrics += evaluate.agreement(mid, c.id, cohort,
                                              scores[c.id][rows] < c.threshold,
                                              p < model.threshold, policy)
        metrics += _outcomes(world, models, scores, live, watched, as_of, policy,
                             measured_outcomes)
        if pending_since is not None and week - pending_since >= 1:
            live = _replace(live, pending_retrain=False)  # the weekly trainer answered
            pending_since = None
        actions = decide(policy, live, metrics, history, as_of)
        for m in metrics:
            past.setdefault((m.model_id, m.metric, m.compared_model_id), []).append(
                (m.cohort.start, m.status, week))
            if m.status == "insufficient_data":
                result.insufficient += 1
        live = _replace(live, champion_inputs_measured=True) if any(
            m.model_id == live.champion and m.cohort.kind == "inputs"
            and m.status != "insufficient_data" for m in metrics) else live
        for m in metrics:
            if m.metric == "estimated_auc":
                estimated[(m.model_id, m.cohort.start)] = m
        _record(result, week, metrics, live, estimated)
        for a in actions:
            live, pending_since = _apply(a, live, week, as_of, policy, result, pending_since)
    return result


def _replace(live: Live, **changes: Any) -> Live:
    from dataclasses import replace

    return replace(live, **changes)


def _matured(world: World, cohort: Cohort, as_of: datetime,
             policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """Matured loans issued in the cohort: their outcomes and the snapshot scored before each."""
    loans = np.flatnonzero((world.loan_issued >= cohort.start.timestamp())
                           & (world.loan_issued < cohort.end.timestamp())
                           & (world.loan_due + policy.grace.total_seconds() <= as_of.timestamp())
                           & (world.loan_observed <= as_of.timestamp())
                           & (world.loan_snapshot >= 0))
    return world.loan_bad[loans], world.loan_snapshot[loans]


def _outcomes(world: World, models: dict[int, Model], scores: dict[int, np.ndarray],
              live: Live, watched: list[int | None], as_of: datetime, policy: Policy,
              measured: set[tuple[int, datetime]]) -> list[Metric]:
    out: list[Metric] = []
    longest = 14 * 86400.0  # synthetic advances are due in two weeks
    week = 0
    while _at(week + 1).timestamp() + longest + policy.grace.total_seconds() \
            <= as_of.timestamp():
        cohort = Cohort("outcomes", _at(week), _at(week + 1))
        week += 1
        y, snap = _matured(world, cohort, as_of, policy)
        for mid in watched:
            assert mid is not None
            if (mid, cohort.start) in measured:
                continue
            measured.add((mid, cohort.start))
            m = models[mid]
            p = scores[mid][snap]
            out += evaluate.outcomes(mid, cohort, m.reference, y, p, m.bands, policy)
            if mid != live.champion and live.champion is not None:
                c = models[live.champion]
                ref = c.reference["outcomes"]
                needed = evaluate.min_outcome_rows(ref["roc_auc"], ref["default_rate"], policy)
                windows = []
                for w in evaluate.paired_span(cohort, policy, mid == live.probation):
                    wy, wsnap = _matured(world, w, as_of, policy)
                    if w.start < DEPLOYED:  # before the shadow scored: no loans scored by both
                        wy, wsnap = wy[:0], wsnap[:0]
                    windows.append(evaluate.PairedWindow(w, wy, scores[c.id][wsnap],
                                                         scores[mid][wsnap]))
                out.append(evaluate.paired(mid, c.id, windows, policy, needed))
    return out


def _record(result: SeedResult, week: int, metrics: list[Metric], live: Live,
            estimated: dict[tuple[int, datetime], Metric]) -> None:
    for m in metrics:
        if m.model_id != live.champion or m.compared_model_id is not None:
            continue
        if m.metric == "realised_auc" and m.status != "insufficient_data":
            est = estimated.get((m.model_id, m.cohort.start))
            if m.breach:
                result.realised_low.append(week)
            result.estimates.append({
                "week": week, "cohort": (m.cohort.start - DEPLOYED).days // 7,
                "realised": m.value or 0.0, "realised_se": m.sampling_error or 0.0,
                "estimated": est.value if est and est.value is not None else float("nan"),
                "estimated_se": est.sampling_error
                if est and est.sampling_error is not None else float("nan")})
        if m.metric == "estimated_auc" and m.breach:
            result.estimated_low.append(week)


def _apply(a: Action, live: Live, week: int, as_of: datetime, policy: Policy,
           result: SeedResult, pending_since: int | None) -> tuple[Live, int | None]:
    if a.kind == "alert" or (a.withheld and a.kind != "info"):
        result.alerts.append((week, a.rule, a.message))
        if a.rule == "feature_drift":
            result.drift_named.append((week, a.detail["features"]))
    elif a.kind == "retrain_request":
        result.requests.append((week, a.rule))
        live, pending_since = _replace(live, pending_retrain=True), week
    elif a.kind == "promote":
        assert a.model_id is not None and live.champion is not None
        result.changes.append((week, "promote", a.model_id))
        shadows = dict(live.shadows)
        shadows[live.champion] = as_of + policy.probation
        live = _replace(live, champion=a.model_id, champion_since=as_of,
                        previous=live.champion, shadows=shadows, champion_inputs_measured=False)
    elif a.kind == "rollback":
        assert live.previous is not None and live.champion is not None
        result.changes.append((week, "rollback", live.previous))
        shadows = {k: v for k, v in live.shadows.items() if k != live.previous}
        live = _replace(live, champion=live.previous, champion_since=as_of, previous=None,
                        shadows=shadows, never_auto=live.never_auto | {live.champion},
                        champion_inputs_measured=False)
    elif a.kind == "end_probation":
        live = _replace(live, shadows={k: v for k, v in live.shadows.items()
                                       if k != a.model_id})
    return live, pending_since


# --- acceptance -----------------------------------------------------------------------------

def check(name: str, results: list[SeedResult]) -> dict[str, Any]:
    """The issue's acceptance figures for one scenario over its seeds."""
    n = len(results)
    out: dict[str, Any] = {"seeds": n}
    if name == "stable":
        out.update(retrain_requests=sum(len(r.requests) for r in results),
                   champion_changes=sum(len(r.changes) for r in results),
                   max_alerts_per_seed=max(len(r.alerts) for r in results),
                   alerts=[len(r.alerts) for r in results])
        est = [e for r in results for e in r.estimates]
        good = [abs(e["estimated"] - e["realised"])
                <= max(0.03, 3 * e["realised_se"]) for e in est]
        out.update(estimate_cohorts=len(est),
                   estimate_within_bound=float(np.mean(good)) if good else None,
                   passed=out["retrain_requests"] == 0 and out["champion_changes"] == 0
                   and out["max_alerts_per_seed"] <= 1
                   and bool(good) and float(np.mean(good)) >= 0.9)
    elif name == "covariate":
        drift_week = 8
        hit = [any(drift_week <= w <= drift_week + 1 for w, _ in r.requests) for r in results]
        allowed = set(DRIFT_FEATURES).union(*DERIVED.values())
        named = [all(set(DRIFT_FEATURES) <= set(f) and set(f) <= allowed
                     for w, f in r.drift_named if w >= drift_week) and any(
                         w >= drift_week for w, _ in r.drift_named) for r in results]
        out.update(request_within_2_runs=sum(hit), features_named=sum(named),
                   passed=sum(hit) >= 0.9 * n and sum(named) >= 0.9 * n)
    elif name == "concept":
        caught = [bool(r.requests) and any(rule == "realised_auc_low" for _, rule in r.requests)
                  for r in results]
        missed = [not r.estimated_low for r in results]
        out.update(caught_by_realised=sum(caught), estimate_blind=sum(missed),
                   first_request_week=[r.requests[0][0] if r.requests else None
                                       for r in results],
                   passed=sum(caught) >= 0.9 * n and sum(missed) >= 0.9 * n)
    elif name == "bad_model":
        rolled = [any(k == "rollback" for _, k, _ in r.changes) for r in results]
        in_time = [any(k == "rollback" and w <= FIRST_MATURED_RUN for w, k, _ in r.changes)
                   for r in results]
        out.update(rolled_back=sum(rolled), within_one_matured_window=sum(in_time),
                   weeks=[[w for w, k, _ in r.changes if k == "rollback"] for r in results],
                   passed=sum(in_time) >= 0.9 * n)
    elif name == "better_challenger":
        promoted = [next((w for w, k, m in r.changes if k == "promote" and m == 2), None)
                    for r in results]
        # Each run from FIRST_MATURED_RUN on sees one more matured window.
        within = [p is not None and p <= FIRST_MATURED_RUN + 2 for p in promoted]
        out.update(promoted_week=promoted, within_3_windows=sum(within),
                   passed=sum(within) >= 0.9 * n)
    elif name == "flapping":
        worst = 0
        for r in results:
            weeks = [w for w, _, _ in r.changes]
            worst = max(worst, max((sum(1 for v in weeks if w <= v < w + 2) for w in weeks),
                                   default=0))
        out.update(max_changes_per_cooldown=worst,
                   changes=[len(r.changes) for r in results], passed=worst <= 1)
    elif name == "small":
        acted = sum(len(r.requests) + len(r.changes) for r in results)
        out.update(actions=acted, insufficient=[r.insufficient for r in results],
                   alerts=[len(r.alerts) for r in results],
                   passed=acted == 0 and all(r.insufficient > 0 for r in results))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validation.monitoring",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--out", type=Path, default=Path("validation/results/monitoring.json"))
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "weeks": MONITOR_WEEKS, "scenarios": {}}
    ok = True
    for name in args.scenario or list(SCENARIOS):
        results = [simulate(SCENARIOS[name](), seed) for seed in range(1, args.seeds + 1)]
        report["scenarios"][name] = figures = check(name, results)
        ok &= bool(figures["passed"])
        print(f"{name:18} {'pass' if figures['passed'] else 'FAIL'}  "
              + json.dumps({k: v for k, v in figures.items() if k != "passed"}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"results: {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
