"""One cohort measured against a model's reference: every figure a monitoring run records.

Pure functions of arrays (no database), so the many-seed validation (validation/monitoring.py)
runs exactly the code the server runs. Each figure is a :class:`Metric`; its ``status`` says
whether it breached its bound. What a breach *does* is decided apart, in
:mod:`pyfuncs.monitoring.policy`.

Inputs cohorts (one row per user: the model's latest score of a snapshot taken in the
cohort) give feature drift, score drift and the confidence-based AUC estimate. Outcomes
cohorts (matured loans issued in the cohort, each with the model's latest score before the
loan) give realised performance, and champion-vs-challenger gains on the same loans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from pyfuncs._typing import Any
from pyfuncs.monitoring import stats
from pyfuncs.monitoring.policy import Policy

INSUFFICIENT = "insufficient_data"


@dataclass(frozen=True)
class Cohort:
    """A window of time: snapshots taken in it (inputs) or loans issued in it (outcomes)."""

    kind: str  # inputs | outcomes
    start: datetime
    end: datetime


@dataclass
class Metric:
    """One figure of one model on one cohort (a row of blink.monitoring_metrics)."""

    model_id: int
    cohort: Cohort
    metric: str
    rows: int
    value: float | None = None
    reference: float | None = None
    sampling_error: float | None = None
    lower_bound: float | None = None
    upper_bound: float | None = None
    critical_value: float | None = None
    p_value: float | None = None
    status: str = "ok"
    feature: str | None = None
    compared_model_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def breach(self) -> bool:
        return self.status == "breach"

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        cohort = out.pop("cohort")
        out.update(cohort_kind=cohort["kind"], cohort_start=cohort["start"],
                   cohort_end=cohort["end"])
        return out


@dataclass(frozen=True)
class PairedWindow:
    """One matured window's loans scored by both models (for :func:`paired`)."""

    cohort: Cohort
    y: np.ndarray
    p_champion: np.ndarray
    p_challenger: np.ndarray


def paired_span(cohort: Cohort, policy: Policy, probation: bool) -> list[Cohort]:
    """The consecutive windows a champion/challenger test spans, oldest first, ending with
    ``cohort``: ``rollback_after`` for the previous champion on probation, else
    ``promote_after``."""
    n = policy.rollback_after if probation else policy.promote_after
    return [Cohort(cohort.kind, cohort.start - k * policy.cohort, cohort.end - k * policy.cohort)
            for k in range(n - 1, -1, -1)]


def _status(breach: bool) -> str:
    return "breach" if breach else "ok"


def insufficient(model_id: int, cohort: Cohort, rows: int, needed: int, what: str) -> Metric:
    """Too few rows for the sampling error the policy accepts: recorded, acted on by nothing."""
    return Metric(model_id, cohort, "rows", rows, value=float(rows), lower_bound=float(needed),
                  status=INSUFFICIENT,
                  detail={"needed": needed, "why": f"{rows} {what}; at least {needed} needed"})


def min_inputs_rows(reference: dict[str, Any], policy: Policy) -> int:
    """Smallest inputs cohort whose score PSI critical value is at most detectable_psi."""
    bins = len(reference["score"]["proportions"])
    return stats.min_rows_for_psi(reference["rows"], bins, policy.score_alpha,
                                  policy.detectable_psi)


def min_outcome_rows(auc: float, default_rate: float, policy: Policy) -> int:
    """Smallest outcomes cohort whose realised-AUC sampling error is at most the policy's."""
    rate = min(max(default_rate, 0.01), 0.99)
    return stats.min_rows_for_auc(min(max(auc, 0.5), 0.99), rate, policy.max_auc_standard_error)


def inputs(model_id: int, cohort: Cohort, reference: dict[str, Any], names: Sequence[str],
           X: np.ndarray, p: np.ndarray, approved: np.ndarray, policy: Policy) -> list[Metric]:
    """Feature drift, score drift and the AUC estimate of one inputs cohort."""
    n = len(p)
    needed = min_inputs_rows(reference, policy)
    if n < needed:
        return [insufficient(model_id, cohort, n, needed, "users scored")]
    out = [Metric(model_id, cohort, "rows", n, value=float(n), lower_bound=float(needed))]
    m_ref = reference["rows"]

    # Feature drift: a PSI test per feature and a missing-rate test per feature, corrected
    # together for testing many hypotheses at once (Benjamini-Hochberg).
    tests: list[Metric] = []
    for j, name in enumerate(names):
        ref = reference["features"][name]
        column = X[:, j]
        present = ~np.isnan(column)
        if present.any():
            counts = stats.bin_counts(column, ref["edges"])
            ref_rows = max(1, round(m_ref * (1 - ref["missing_rate"])))
            f = stats.psi_test(ref["proportions"], ref_rows, counts, policy.drift_fdr)
            tests.append(Metric(model_id, cohort, "feature_psi", int(present.sum()),
                                value=f.psi, critical_value=f.critical_value, p_value=f.p_value,
                                feature=name, detail={"bins": f.bins}))
        missing = stats.proportion_test(ref["missing_rate"], m_ref, int((~present).sum()), n)
        tests.append(Metric(model_id, cohort, "feature_missing_rate", n, value=missing.observed,
                            reference=missing.reference, sampling_error=missing.standard_error,
                            p_value=missing.p_value, feature=name))
    rejected = stats.benjamini_hochberg([t.p_value for t in tests], policy.drift_fdr)
    for metric, r in zip(tests, rejected, strict=True):
        metric.status = _status(bool(r))
    out.extend(tests)
    drifting = sorted({m.feature for m in tests if m.breach and m.feature})
    share = len(drifting) / len(names)
    out.append(Metric(model_id, cohort, "drift_share", n, value=share,
                      upper_bound=policy.drift_share,
                      status=_status(share >= policy.drift_share and len(drifting) >= 2),
                      detail={"features": drifting}))

    # Score drift: the probability's own PSI, the approval rate and the risk-band mix.
    score = reference["score"]
    t = stats.psi_test(score["proportions"], m_ref, stats.bin_counts(p, score["edges"]),
                       policy.score_alpha)
    out.append(Metric(model_id, cohort, "score_psi", n, value=t.psi,
                      critical_value=t.critical_value, p_value=t.p_value,
                      status=_status(t.p_value < policy.score_alpha)))
    a = stats.proportion_test(score["approval_rate"], m_ref, int(approved.sum()), n)
    out.append(Metric(model_id, cohort, "approval_rate", n, value=a.observed,
                      reference=a.reference, sampling_error=a.standard_error, p_value=a.p_value,
                      status=_status(a.p_value < policy.alert_alpha)))
    band_counts = stats.band_shares(p, score["band_uppers"])
    b = stats.psi_test(score["band_proportions"], m_ref, band_counts, policy.alert_alpha)
    out.append(Metric(model_id, cohort, "band_mix", n, value=b.psi,
                      critical_value=b.critical_value, p_value=b.p_value,
                      status=_status(b.p_value < policy.alert_alpha),
                      detail={"bands": score["bands"],
                              "shares": [float(c) / n for c in band_counts]}))
    out.append(Metric(model_id, cohort, "mean_probability", n, value=float(p.mean()),
                      reference=score["mean_probability"]))

    # Estimated performance (CBPE): blind to concept drift, so it only raises an alert on a
    # dip and asks for retraining when it stays below its lower bound.
    est = stats.cbpe_auc(p)
    lower = score["estimated_auc"] - policy.performance_z * est.standard_error
    out.append(Metric(model_id, cohort, "estimated_auc", n, value=est.auc,
                      reference=score["estimated_auc"], sampling_error=est.standard_error,
                      lower_bound=lower, status=_status(est.auc < lower),
                      detail={"alert_bound": score["estimated_auc"]
                              - policy.alert_z * est.standard_error}))
    return out


def broken_deployment(metrics: Sequence[Metric], policy: Policy) -> str | None:
    """Why a champion's first inputs cohort shows a broken deployment, or None.

    Broken: the score distribution or the approval rate is far outside the model's own
    reference (beyond ``broken_psi`` / ``broken_approval_change``, and significant).
    """
    for m in metrics:
        if m.metric == "score_psi" and m.breach and (m.value or 0) > policy.broken_psi:
            return (f"score PSI {m.value:.3f} against the model's own reference (limit "
                    f"{policy.broken_psi}, critical value {m.critical_value:.3f})")
        if m.metric == "approval_rate" and m.breach and m.reference is not None \
                and abs((m.value or 0) - m.reference) > policy.broken_approval_change:
            return (f"approval rate {m.value:.1%} against {m.reference:.1%} in the model's "
                    f"reference (limit ±{policy.broken_approval_change:.0%})")
    return None


def outcomes(model_id: int, cohort: Cohort, reference: dict[str, Any] | None, y: np.ndarray,
             p: np.ndarray, bands: Sequence[tuple[float, str]], policy: Policy) -> list[Metric]:
    """Realised performance of one matured outcomes cohort."""
    n, positives = len(y), int(y.sum())
    ref = (reference or {}).get("outcomes") or {}
    needed = min_outcome_rows(ref.get("roc_auc", 0.75), ref.get("default_rate", 0.1), policy)
    if n < needed or positives < 5 or n - positives < 5:
        return [insufficient(model_id, cohort, n, needed, f"matured loans ({positives} bad)")]
    out = [Metric(model_id, cohort, "loans", n, value=float(n), lower_bound=float(needed),
                  detail={"positives": positives})]
    auc = stats.auc_delong(y, p)
    if ref:
        se = float(np.hypot(auc.standard_error, ref["roc_auc_standard_error"]))
        lower = ref["roc_auc"] - policy.performance_z * se
        out.append(Metric(model_id, cohort, "realised_auc", n, value=auc.auc,
                          reference=ref["roc_auc"], sampling_error=auc.standard_error,
                          lower_bound=lower, status=_status(auc.auc < lower)))
    else:
        out.append(Metric(model_id, cohort, "realised_auc", n, value=auc.auc,
                          sampling_error=auc.standard_error))
    cal = stats.calibration(y, p)
    upper = None
    if ref:
        upper = (ref["ece"] + policy.calibration_tolerance
                 + policy.performance_z * cal.standard_error)
    out.append(Metric(model_id, cohort, "calibration_error", n, value=cal.ece,
                      reference=ref.get("ece"), sampling_error=cal.standard_error,
                      upper_bound=upper, status=_status(upper is not None and cal.ece > upper)))
    rate = stats.proportion_test(cal.predicted_rate, 10**9, positives, n)
    out.append(Metric(model_id, cohort, "default_rate", n, value=cal.observed_rate,
                      reference=cal.predicted_rate, sampling_error=cal.rate_standard_error,
                      p_value=rate.p_value, status=_status(rate.p_value < policy.alert_alpha)))
    for band in stats.band_rates(y, p, [u for u, _ in bands], [b for _, b in bands]):
        if band["rows"]:
            out.append(Metric(model_id, cohort, "band_default_rate", band["rows"],
                              value=band["observed_rate"], reference=band["predicted_rate"],
                              sampling_error=band["standard_error"], feature=band["band"]))
    return out


def paired(challenger_id: int, champion_id: int, windows: Sequence[PairedWindow],
           policy: Policy, needed: int) -> Metric:
    """Does the challenger beat the champion on the same matured loans, window after window?

    ``windows`` are the consecutive matured windows the decision spans (oldest first; the
    last is the cohort measured now): ``promote_after`` of them for a challenger,
    ``rollback_after`` for the previous champion on probation. A win needs every window big
    enough to judge (``needed`` loans, 5 of each outcome) with the challenger ahead in each,
    and, over the windows' loans together, a lower confidence bound of the AUC gain (DeLong,
    paired) above the gate's ``min_auc_gain`` and a calibration error within
    ``calibration_tolerance`` of the champion's. Pooling the windows' loans into one test
    (rather than requiring a separate significant win in each) is what makes a clearly better
    model win within a few windows at realistic cohort sizes; requiring the lead in every
    window keeps the "consecutive windows" guard. Recorded for the challenger, on the last
    window, compared with the champion.
    """
    cohort = windows[-1].cohort
    y_now = windows[-1].y
    positives = int(y_now.sum())
    if len(y_now) < needed or positives < 5 or len(y_now) - positives < 5:
        return insufficient(challenger_id, cohort, len(y_now), needed,
                            f"matured loans scored by both ({positives} bad)")
    leads: list[dict[str, Any]] = []
    gains: list[float | None] = []
    for w in windows:
        judged = len(w.y) >= needed and 5 <= int(w.y.sum()) <= len(w.y) - 5
        gains.append(stats.roc_auc(w.y, w.p_challenger) - stats.roc_auc(w.y, w.p_champion)
                     if judged else None)
        leads.append({"from": w.cohort.start.isoformat(), "rows": len(w.y), "gain": gains[-1]})
    y = np.concatenate([w.y for w in windows])
    p_champion = np.concatenate([w.p_champion for w in windows])
    p_challenger = np.concatenate([w.p_challenger for w in windows])
    d = stats.paired_auc_difference(y, p_champion, p_challenger)
    lower = d.difference - policy.confidence_z * d.standard_error
    ece_champion = stats.calibration(y, p_champion).ece
    ece_challenger = stats.calibration(y, p_challenger).ece
    calibrated = ece_challenger <= ece_champion + policy.calibration_tolerance
    ahead = all(g is not None and g > 0 for g in gains)
    return Metric(challenger_id, cohort, "auc_gain", len(y), value=d.difference,
                  sampling_error=d.standard_error, lower_bound=lower,
                  reference=policy.min_auc_gain, p_value=d.p_value,
                  status=_status(lower > policy.min_auc_gain and calibrated and ahead),
                  compared_model_id=champion_id,
                  detail={"auc": d.auc_b, "compared_auc": d.auc_a, "ece": ece_challenger,
                          "compared_ece": ece_champion, "calibrated": calibrated,
                          "ahead_in_every_window": ahead, "windows": leads})


def agreement(shadow_id: int, champion_id: int, cohort: Cohort, champion_approved: np.ndarray,
              shadow_approved: np.ndarray, policy: Policy) -> list[Metric]:
    """How often a shadow decides differently from the champion on the same users, and how
    many of the champion's approvals it would also approve (the loans it can be judged on:
    outcomes exist only for approved loans)."""
    n = len(champion_approved)
    if n == 0:
        return []
    disagree = float(np.mean(champion_approved != shadow_approved))
    approved = int(champion_approved.sum())
    overlap = float(np.mean(shadow_approved[champion_approved])) if approved else None
    return [
        Metric(shadow_id, cohort, "decision_disagreement", n, value=disagree,
               upper_bound=policy.shadow_disagreement, compared_model_id=champion_id,
               status=_status(disagree > policy.shadow_disagreement)),
        Metric(shadow_id, cohort, "approval_overlap", approved, value=overlap,
               compared_model_id=champion_id),
    ]
