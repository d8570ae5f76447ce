"""What monitoring does about what it measured: the owner's policy and the rules that apply it.

Thresholds live in blink.monitoring_policy (:class:`Policy`); measurement lives in
:mod:`pyfuncs.monitoring.evaluate`. :func:`decide` turns one run's metrics, plus the statuses
earlier runs recorded, into actions. It is pure, so the database run and the many-seed
validation share it. The rules (docs/monitoring.md has the why of each):

* alert: a feature drifting (PSI or missing rate, after Benjamini-Hochberg), the approval
  rate or band mix moving, a dip of the AUC estimate, calibration off, a shadow disagreeing.
* retrain request: score drift, a share of features drifting, or the estimated or realised
  AUC below its lower bound, in ``consecutive_breaches`` cohorts in a row.
* promotion: a shadow beats the champion on the same matured loans of the last
  ``promote_after`` windows (ahead in each, significant over them together), outside the
  cooldown, never a model rolled back automatically.
* rollback: the previous champion (scoring in shadow on probation) wins by the same test
  over ``rollback_after`` windows, or the champion's first inputs cohort shows a broken
  deployment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pyfuncs._typing import Any

if TYPE_CHECKING:
    from pyfuncs.monitoring.evaluate import Cohort, Metric

MODES = ("off", "alert", "auto")


@dataclass(frozen=True)
class Policy:
    """The columns of blink.monitoring_policy (defaults are the table's defaults)."""

    mode: str = "alert"
    kill_switch: bool = False
    cohort: timedelta = timedelta(days=7)
    grace: timedelta = timedelta(days=30)
    lookback: timedelta = timedelta(days=182)
    max_cohorts_per_run: int = 8
    drift_fdr: float = 0.001
    drift_share: float = 0.3
    score_alpha: float = 0.001
    alert_alpha: float = 0.001
    detectable_psi: float = 0.1
    max_auc_standard_error: float = 0.04
    performance_z: float = 3.0
    alert_z: float = 2.0
    consecutive_breaches: int = 2
    min_auc_gain: float = 0.005
    calibration_tolerance: float = 0.01
    confidence_z: float = 1.645
    promote_after: int = 2
    rollback_after: int = 1
    cooldown: timedelta = timedelta(days=14)
    probation: timedelta = timedelta(days=63)  # outlasts two matured windows
    broken_psi: float = 0.25
    broken_approval_change: float = 0.15
    shadow_disagreement: float = 0.25

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Policy:
        """From a policy row; intervals as timedelta or as seconds (``<name>_seconds``)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f"{f.name}_seconds" in row:  # PL/Python hands intervals over as text
                values[f.name] = timedelta(seconds=float(row[f"{f.name}_seconds"]))
            elif f.name in row:
                values[f.name] = row[f.name]
        return cls(**values)

    @property
    def acts(self) -> bool:
        """Whether monitoring may change things on its own (mode auto, kill switch off)."""
        return self.mode == "auto" and not self.kill_switch

    @property
    def withheld(self) -> str:
        return "kill switch on" if self.kill_switch else f"mode {self.mode}"


@dataclass(frozen=True)
class Live:
    """The models a run looks after, and what earlier runs and deployments left behind."""

    champion: int | None
    champion_since: datetime | None = None
    previous: int | None = None  # where a rollback returns to
    shadows: Mapping[int, datetime | None] = field(default_factory=dict)  # model -> until
    never_auto: frozenset[int] = frozenset()  # rolled back automatically once
    pending_retrain: bool = False
    champion_inputs_measured: bool = False  # an inputs cohort since the champion's deployment

    @property
    def probation(self) -> int | None:
        """The previous champion while it scores in shadow on probation."""
        if self.previous is not None and self.shadows.get(self.previous, None) is not None:
            return self.previous
        return None


@dataclass
class Action:
    """Something a run does or reports. ``withheld`` says why it was not carried out."""

    kind: str  # info | alert | retrain_request | promote | rollback | end_probation
    rule: str
    model_id: int | None
    message: str
    cohorts: list[Cohort] = field(default_factory=list)
    cited_runs: list[int | None] = field(default_factory=list)  # None: this run
    withheld: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        if self.kind == "info":
            return "info"
        return "alert" if self.kind == "alert" or self.withheld else "action"


# Metrics whose status over consecutive cohorts decides a retrain request.
RETRAIN_RULES = {
    "score_psi": "score_drift",
    "drift_share": "features_drifting",
    "estimated_auc": "estimated_auc_low",
    "realised_auc": "realised_auc_low",
}

# (model, metric, compared model, before cohort start) -> [(status, run id)], oldest first.
History = Callable[[int, str, "int | None", datetime], Sequence[tuple[str, int]]]


def _key(m: Metric) -> tuple[int, str, int | None]:
    return (m.model_id, m.metric, m.compared_model_id)


class _Streaks:
    """Statuses per (model, metric, compared model), oldest first: earlier runs, then this one."""

    def __init__(self, history: History) -> None:
        self._history = history
        self._seen: dict[tuple[int, str, int | None], list[tuple[str, int | None, Any]]] = {}

    def add(self, m: Metric) -> None:
        key = _key(m)
        if key not in self._seen:
            self._seen[key] = [(s, r, None) for s, r in self._history(*key, m.cohort.start)]
        self._seen[key].append((m.status, None, m.cohort))

    def trailing(self, m: Metric) -> tuple[int, list[int | None], list[Any]]:
        """How many breaches in a row end with ``m``; their runs and this run's cohorts."""
        runs: list[int | None] = []
        cohorts = []
        for status, run, cohort in reversed(self._seen[_key(m)]):
            if status != "breach":
                break
            runs.append(run)
            if cohort is not None:
                cohorts.append(cohort)
        return len(runs), runs[::-1], cohorts[::-1]

    def recent_runs(self, m: Metric, count: int) -> list[int | None]:
        """The runs of the last ``count`` statuses ending with ``m``, whatever they were."""
        return [run for _, run, _ in self._seen[_key(m)][-count:]]


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def alerts(champion: int | None, metrics: Sequence[Metric]) -> list[Action]:
    """Alert-level findings of one cohort's metrics (and insufficient data, as info)."""
    out: list[Action] = []
    if not metrics:
        return out
    cohort = metrics[0].cohort
    for m in metrics:
        if m.status == "insufficient_data":
            out.append(Action("info", "insufficient_data", m.model_id,
                              f"model {m.model_id}, {cohort.kind} cohort from "
                              f"{cohort.start:%Y-%m-%d}: insufficient data "
                              f"({m.detail.get('why')}); nothing measured or acted on",
                              [cohort]))
    own = [m for m in metrics if m.model_id == champion and m.compared_model_id is None]
    drifting = [m for m in own if m.metric in ("feature_psi", "feature_missing_rate")
                and m.breach]
    if drifting:
        parts = []
        for m in drifting:
            if m.metric == "feature_psi":
                parts.append(f"{m.feature} (PSI {m.value:.3f} > critical "
                             f"{m.critical_value:.3f})")
            else:
                parts.append(f"{m.feature} missing rate {_fmt(m.reference, '.1%')} -> "
                             f"{_fmt(m.value, '.1%')}")
        out.append(Action("alert", "feature_drift", champion,
                          f"feature drift in the cohort from {cohort.start:%Y-%m-%d}: "
                          + "; ".join(parts), [cohort],
                          detail={"features": sorted({m.feature for m in drifting})}))
    for m in own:
        if m.metric == "approval_rate" and m.breach:
            text = (f"approval rate {m.value:.1%} vs {m.reference:.1%} in the reference "
                    f"(±{m.sampling_error:.1%})")
            out.append(Action("alert", "approval_rate_shift", champion, text, [cohort]))
        elif m.metric == "band_mix" and m.breach:
            out.append(Action("alert", "band_mix_shift", champion,
                              f"risk-band mix moved: PSI {m.value:.3f} > critical "
                              f"{m.critical_value:.3f}", [cohort]))
        elif m.metric == "estimated_auc" and not m.breach \
                and m.value is not None and m.value < m.detail["alert_bound"]:
            out.append(Action("alert", "estimated_auc_dip", champion,
                              f"estimated AUC {m.value:.3f} below {m.detail['alert_bound']:.3f}"
                              f" (reference {m.reference:.3f})", [cohort]))
        elif m.metric == "calibration_error" and m.breach:
            out.append(Action("alert", "calibration", champion,
                              f"calibration error {m.value:.3f} above {m.upper_bound:.3f}",
                              [cohort]))
        elif m.metric == "default_rate" and m.breach:
            out.append(Action("alert", "default_rate", champion,
                              f"observed default rate {m.value:.1%} vs predicted "
                              f"{m.reference:.1%} (±{m.sampling_error:.1%})", [cohort]))
    for m in metrics:
        if m.metric == "decision_disagreement" and m.breach:
            out.append(Action("alert", "shadow_disagreement", m.model_id,
                              f"shadow model {m.model_id} decides differently from the "
                              f"champion for {m.value:.1%} of users (limit "
                              f"{m.upper_bound:.0%})", [cohort]))
    return out


def decide(policy: Policy, live: Live, metrics: Sequence[Metric], history: History,
           as_of: datetime, now: datetime | None = None) -> list[Action]:
    """Everything one run does, given its metrics (any cohorts, any models) and the past.

    ``as_of`` is the data horizon (probation ends by it); ``now`` (default ``as_of``) is the
    run's wall-clock time, which the cooldown between champion changes counts in: a run
    over past data must not promote a champion deployed a minute ago.
    """
    from pyfuncs.monitoring.evaluate import broken_deployment

    if policy.mode == "off":
        return []
    streaks = _Streaks(history)
    actions: list[Action] = []
    requested = live.pending_retrain
    changed = False
    first_window = not live.champion_inputs_measured
    by_cohort: dict[tuple[datetime, str], list[Metric]] = {}
    for m in metrics:
        by_cohort.setdefault((m.cohort.start, m.cohort.kind), []).append(m)

    def gated(action: Action, blocked: str | None = None) -> Action:
        action.withheld = blocked or (None if policy.acts else policy.withheld)
        return action

    for _, group in sorted(by_cohort.items(), key=lambda kv: kv[0]):
        cohort = group[0].cohort
        for m in group:
            streaks.add(m)
        actions.extend(alerts(live.champion, group))
        if changed:
            continue
        champion_inputs = [m for m in group if m.model_id == live.champion
                           and cohort.kind == "inputs" and m.status != "insufficient_data"]
        # A broken deployment shows at once: roll back without waiting for outcomes.
        if champion_inputs and first_window:
            first_window = False
            why = broken_deployment(champion_inputs, policy)
            if why and live.previous is not None:
                actions.append(gated(Action(
                    "rollback", "broken_deployment", live.champion,
                    f"monitoring: broken deployment of model {live.champion} in its first "
                    f"cohort ({cohort.start:%Y-%m-%d}): {why}", [cohort], [None])))
                changed = True
                continue
        # Retrain requests: the champion's verdict metrics, breached in a row.
        for m in group:
            rule = RETRAIN_RULES.get(m.metric)
            if rule is None or m.model_id != live.champion or m.compared_model_id is not None:
                continue
            count, runs, _ = streaks.trailing(m)
            if count >= policy.consecutive_breaches and not requested:
                requested = True
                actions.append(gated(Action(
                    "retrain_request", rule, live.champion,
                    f"{rule}: {m.metric} breached its bound in {count} cohorts in a row "
                    f"(latest {cohort.kind} cohort from {cohort.start:%Y-%m-%d}: "
                    f"{_fmt(m.value)}, bound {_fmt(m.lower_bound or m.critical_value)})",
                    [cohort], runs, detail={"metric": m.metric})))
        # Champion changes on the same matured loans: each auc_gain already spans the
        # consecutive windows its rule needs (promote_after / rollback_after), see
        # evaluate.paired, so one win decides.
        for m in group:
            if m.metric != "auc_gain" or m.compared_model_id != live.champion \
                    or not m.breach:
                continue
            windows = m.detail["windows"]  # evaluate.paired records the windows of a win
            gain = (f"AUC gain {m.value:+.4f} ± {m.sampling_error:.4f} (lower bound "
                    f"{m.lower_bound:+.4f} > {policy.min_auc_gain}) on {m.rows} matured loans "
                    f"issued from {windows[0]['from'][:10]}, "
                    f"ahead in each of {len(windows)} window(s)")
            runs = streaks.recent_runs(m, len(windows))
            if m.model_id == live.probation and len(windows) >= policy.rollback_after:
                actions.append(gated(Action(
                    "rollback", "previous_champion_better", live.champion,
                    f"monitoring: the previous champion {m.model_id} beats model "
                    f"{live.champion}: {gain}", [cohort], runs)))
                changed = True
                break
            if m.model_id in live.shadows and m.model_id != live.probation \
                    and len(windows) >= policy.promote_after:
                blocked = None
                if m.model_id in live.never_auto:
                    blocked = "rolled back automatically before; promote it by hand if wanted"
                elif live.champion_since is not None \
                        and (now or as_of) - live.champion_since < policy.cooldown:
                    blocked = (f"cooldown: the champion changed less than "
                               f"{policy.cooldown.days} days ago")
                actions.append(gated(Action(
                    "promote", "challenger_better", m.model_id,
                    f"monitoring: shadow model {m.model_id} beats champion {live.champion}: "
                    f"{gain}", [cohort], runs), blocked))
                if actions[-1].withheld is None:
                    changed = True
                    break
    for model_id, until in live.shadows.items():
        if until is not None and until <= as_of and not changed:
            actions.append(Action("end_probation", "probation_over", model_id,
                                  f"probation of the previous champion {model_id} ended "
                                  f"{until:%Y-%m-%d}; it no longer scores in shadow"))
    return actions
