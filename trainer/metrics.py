"""Model quality on a window: discrimination, calibration, cost-optimal threshold, bands."""

from __future__ import annotations

from typing import Any

import numpy as np

CALIBRATION_BINS = 10


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS
                      ) -> list[dict[str, float]]:
    """Rows grouped by predicted probability (equal-count bins): mean predicted vs observed."""
    order = np.argsort(p, kind="stable")
    table = []
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk) == 0:
            continue
        table.append({
            "rows": int(len(chunk)),
            "min_predicted": float(p[chunk].min()),
            "max_predicted": float(p[chunk].max()),
            "mean_predicted": float(p[chunk].mean()),
            "observed_rate": float(y[chunk].mean()),
        })
    return table


def expected_calibration_error(table: list[dict[str, float]]) -> float:
    """Row-weighted mean |observed rate - mean predicted| over the calibration bins."""
    total = sum(b["rows"] for b in table)
    return float(sum(b["rows"] * abs(b["observed_rate"] - b["mean_predicted"]) for b in table)
                 / total)


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score CDFs of bad and good rows."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def expected_cost(y: np.ndarray, p: np.ndarray, threshold: float, missed_default: float,
                  declined_good: float) -> float:
    """Mean cost per applicant when declining at ``p >= threshold``."""
    declined = p >= threshold
    missed = np.sum(~declined & (y == 1))
    wrongly_declined = np.sum(declined & (y == 0))
    return float((missed_default * missed + declined_good * wrongly_declined) / len(y))


def cost_optimal_threshold(y: np.ndarray, p: np.ndarray, missed_default: float,
                           declined_good: float) -> float:
    """The decline threshold with the least expected cost on (y, p), strictly inside (0, 1).

    Candidates are the distinct predicted probabilities (declining at or above each); ties
    go to the higher threshold (fewer declines).
    """
    candidates = np.unique(np.clip(p, 1e-6, 1 - 1e-6))
    order = np.argsort(p)
    ys, ps = y[order], p[order]
    # Declining everything at or above threshold t: missed = bad rows below t, etc.
    bad_below = np.concatenate([[0], np.cumsum(ys)])
    good_below = np.concatenate([[0], np.cumsum(1 - ys)])
    below = np.searchsorted(ps, candidates, side="left")
    costs = missed_default * bad_below[below] + declined_good * (good_below[-1] - good_below[below])
    best = np.flatnonzero(costs == costs.min())[-1]
    return float(candidates[best])


def band_table(y: np.ndarray, p: np.ndarray, bands: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
    """Rows and observed bad rate per risk band (bands are ascending upper bounds)."""
    out, lower = [], -np.inf
    for band in bands:
        upper = float(band["max_probability"])
        inside = (p > lower) & (p <= upper)
        out.append({"band": band["band"], "max_probability": upper, "rows": int(inside.sum()),
                    "observed_rate": float(y[inside].mean()) if inside.any() else None})
        lower = upper
    return out


def evaluate(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """ROC AUC, PR AUC, KS, Brier, log loss and the calibration table of predictions ``p``."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    table = calibration_table(y, p)
    return {
        "rows": int(len(y)),
        "positives": int(y.sum()),
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "ks": ks_statistic(y, p),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "ece": expected_calibration_error(table),
        "calibration": table,
    }
