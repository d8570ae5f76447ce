"""Reason codes: exact TreeSHAP values from LightGBM, the top features towards default, as text.

A feature's SHAP value is how much it moved this user's log-odds of default away from the
model's average (the base value); base value + the sum of all SHAP values = the raw score.
The reasons are the ``TOP_REASONS`` features with the largest values, that is the ones that
push hardest towards default (adverse-action style "principal reasons"). A reason whose value
is <= 0 did not raise the risk compared with the average borrower; it is listed only when
fewer features than ``TOP_REASONS`` raised it, and its ``shap`` says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyfuncs.errors import BlinkError

TOP_REASONS = 4
DEFAULT_KEY = "*"  # the reason_codes row used for features without a row of their own


@dataclass(frozen=True)
class ReasonText:
    code: str
    text: str
    missing_text: str | None = None  # when the feature's value was missing

    def render(self, value: float) -> str:
        if value != value and self.missing_text:  # NaN: the value was missing
            return self.missing_text
        return self.text


class ReasonTable:
    """Feature name -> reason code and text, from ``blink.reason_codes`` (editable)."""

    def __init__(self, entries: dict[str, ReasonText]) -> None:
        self._entries = dict(entries)
        if DEFAULT_KEY not in self._entries:
            # The table keeps its '*' row (a trigger refuses its removal); a copy here
            # would be a second source of the text.
            raise BlinkError("blink.reason_codes has no default row (feature_name '*')")
        self.default = self._entries.pop(DEFAULT_KEY)

    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, Any]]) -> ReasonTable:
        """Rows with ``feature_name``, ``code``, ``reason_text``, ``missing_reason_text``."""
        return cls({
            r["feature_name"]: ReasonText(r["code"], r["reason_text"], r.get("missing_reason_text"))
            for r in rows
        })

    def lookup(self, feature: str) -> ReasonText:
        return self._entries.get(feature, self.default)


def shap_values(booster: Any, matrix: Any) -> Any:
    """Exact TreeSHAP contributions, one thread: shape (n, features + 1), base value last.

    Parameters
    ----------
    booster : lightgbm.Booster or pyfuncs.predictor.BoosterPredictor
    matrix : array_like, shape (n_rows, n_features), NaN for missing
    """
    import numpy as np

    if hasattr(booster, "contributions"):
        return booster.contributions(matrix)
    data = np.asarray(matrix, dtype=np.float64)
    return booster.predict(data, pred_contrib=True, num_threads=1)


def top_reasons(contributions: Any, matrix: Any, feature_names: Sequence[str],
                table: ReasonTable, top: int = TOP_REASONS) -> list[list[dict[str, Any]]]:
    """The ``top`` reasons of every row, largest SHAP value (towards default) first.

    Parameters
    ----------
    contributions : ndarray, shape (n_rows, n_features + 1)
        From :func:`shap_values` (the last column, the base value, is ignored here).
    matrix : ndarray, shape (n_rows, n_features)
        The feature values the contributions were computed on.
    feature_names : sequence of str
    table : ReasonTable

    Returns
    -------
    list of list of dict
        Per row: ``{"rank", "feature", "code", "reason", "shap", "value"}``; ``value`` is None
        when the feature was missing.
    """
    import numpy as np

    n_features = len(feature_names)
    phi = np.asarray(contributions, dtype=np.float64)[:, :n_features]
    # Stable sort on -phi: ties keep the model's feature order, so results are deterministic.
    order = np.argsort(-phi, axis=1, kind="stable")[:, : min(top, n_features)]
    texts = [table.lookup(name) for name in feature_names]
    out: list[list[dict[str, Any]]] = []
    for row_phi, row_values, row_order in zip(phi.tolist(), np.asarray(matrix).tolist(),
                                              order.tolist(), strict=True):
        reasons = []
        for rank, j in enumerate(row_order, start=1):
            value = row_values[j]
            reason = texts[j]
            reasons.append({
                "rank": rank,
                "feature": feature_names[j],
                "code": reason.code,
                "reason": reason.render(value),
                "shap": row_phi[j],
                "value": None if math.isnan(value) else value,
            })
        out.append(reasons)
    return out


def explain_matrix(booster: Any, matrix: Any, feature_names: Sequence[str],
                   table: ReasonTable, top: int = TOP_REASONS) -> list[list[dict[str, Any]]]:
    """SHAP values and the top reasons of every row of ``matrix`` (one pred_contrib call)."""
    return top_reasons(shap_values(booster, matrix), matrix, feature_names, table, top)


def to_json(reasons: list[list[dict[str, Any]]]) -> list[str]:
    """Each row's reasons as the JSON text stored in ``risk_score_audits.reasons``."""
    dumps = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
    return [dumps(r) for r in reasons]
