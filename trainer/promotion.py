"""Champion/challenger: the promotion gate, and recording each decision with its reason."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from trainer import registry

log = logging.getLogger("trainer")


@dataclass(frozen=True)
class GateResult:
    """Whether the candidate should replace the champion, and why (one sentence)."""

    passed: bool
    reason: str


def gate(candidate: dict[str, Any], champion: dict[str, Any] | None, *, min_auc_gain: float,
         calibration_tolerance: float) -> GateResult:
    """Compare metrics measured on the same out-of-time window.

    Promote when ROC AUC improves by at least ``min_auc_gain`` and the expected calibration
    error (ECE) does not rise by more than ``calibration_tolerance``. With no champion the
    candidate passes.
    """
    if champion is None:
        return GateResult(True, f"no champion yet; candidate ROC AUC {candidate['roc_auc']:.4f}")
    gain = candidate["roc_auc"] - champion["roc_auc"]
    auc = (f"ROC AUC {candidate['roc_auc']:.4f} vs champion {champion['roc_auc']:.4f} "
           f"(gain {gain:+.4f}, needed {min_auc_gain:+.4f})")
    ece = (f"calibration error {candidate['ece']:.4f} vs {champion['ece']:.4f} "
           f"(tolerance {calibration_tolerance:.4f})")
    if gain < min_auc_gain:
        return GateResult(False, f"not better: {auc}")
    if candidate["ece"] > champion["ece"] + calibration_tolerance:
        return GateResult(False, f"worse calibration: {ece}; {auc}")
    return GateResult(True, f"better: {auc}; {ece}")


REVIEW_SQL = """
INSERT INTO blink.blink_promotion_reviews (candidate_model_id, champion_model_id, decision,
    gate_passed, forced, reason, window_start, window_end, candidate_metrics, champion_metrics)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
RETURNING id
"""


def _without_calibration(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The metrics a review stores: all but the calibration table."""
    if metrics is None:
        return None
    return {k: v for k, v in metrics.items() if k != "calibration"}


def _summary(metrics: dict[str, Any] | None) -> str | None:
    summary = _without_calibration(metrics)
    return None if summary is None else json.dumps(summary, sort_keys=True)


def record_review(conn: Any, *, candidate_id: int, champion_id: int | None, decision: str,
                  gate_passed: bool, forced: bool, reason: str,
                  window: dict[str, str], candidate: dict[str, Any],
                  champion: dict[str, Any] | None) -> int:
    """Append one review that changed nothing (refused, evaluated); returns its id.

    A promotion's review is written by blink_promote itself, with its deployment.
    """
    row = conn.execute(REVIEW_SQL, [
        candidate_id, champion_id, decision, gate_passed, forced, reason,
        window["from"], window["to"], _summary(candidate), _summary(champion),
    ]).fetchone()
    return int(row[0])


@dataclass(frozen=True)
class Decision:
    """What the run did with its candidate."""

    decision: str  # promoted | refused | evaluated
    reason: str
    review_id: int
    deployment_id: int | None


def apply_decision(conn: Any, *, candidate_id: int, champion_id: int | None, result: GateResult,
                   deploy: bool, force: bool, window: dict[str, str],
                   candidate: dict[str, Any], champion: dict[str, Any] | None) -> Decision:
    """Promote (through blink_promote) or refuse, and record the review, in one transaction.

    If blink_promote() itself fails, the refusal is recorded with its error and re-raised.
    """
    promote = force or (deploy and result.passed)
    if promote:
        reason = result.reason if result.passed else f"forced (--force) despite: {result.reason}"
        decision = "promoted"
    elif deploy:
        reason, decision = result.reason, "refused"
    else:
        reason = f"evaluated without --deploy; would {'promote' if result.passed else 'refuse'}: "
        reason += result.reason
        decision = "evaluated"
    common: dict[str, Any] = dict(
        candidate_id=candidate_id, champion_id=champion_id, gate_passed=result.passed,
        forced=force and not result.passed, window=window, candidate=candidate,
        champion=champion)
    if promote:
        review = json.dumps({
            "champion_model_id": champion_id, "gate_passed": result.passed,
            "forced": common["forced"], "reason": reason, "window_start": window["from"],
            "window_end": window["to"], "candidate_metrics": _without_calibration(candidate),
            "champion_metrics": _without_calibration(champion),
        })
        try:
            with conn.transaction():
                deployment_id = registry.promote(conn, candidate_id, f"trainer: {reason}",
                                                 review)
                (review_id,) = conn.execute(
                    "SELECT id FROM blink.blink_promotion_reviews WHERE deployment_id = %s",
                    [deployment_id]).fetchone()
            registry.refresh_feature_vectors(conn)  # the new champion's layout, if it is new
            return Decision(decision, reason, review_id, deployment_id)
        except Exception as exc:
            failure = f"blink_promote failed: {str(exc).strip().splitlines()[0]}"
            with conn.transaction():
                review_id = record_review(conn, decision="refused", reason=failure,
                                          **common)
            raise PromotionFailed(failure, review_id) from exc
    with conn.transaction():
        review_id = record_review(conn, decision=decision, reason=reason,
                                  **common)
    return Decision(decision, reason, review_id, None)


class PromotionFailed(Exception):
    """blink_promote() refused the candidate; the refusal is recorded as ``review_id``."""

    def __init__(self, message: str, review_id: int) -> None:
        super().__init__(message)
        self.review_id = review_id
