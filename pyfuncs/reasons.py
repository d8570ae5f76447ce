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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyfuncs.errors import BlinkError
from pyfuncs.features import FeatureSpec

TOP_REASONS = 4
DEFAULT_KEY = "*"  # the reason_codes row used for features without a row of their own


@dataclass(frozen=True)
class ReasonText:
    code: str
    text: str
    missing_text: str | None = None  # when the feature's value was missing

    def render(self, value: Any) -> str:
        if value is None and self.missing_text:  # the value was missing
            return self.missing_text
        return self.text


def category_key(value: Any) -> str | None:
    """How ``blink.reason_codes.category`` names a categorical value (true/false for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else None


class ReasonTable:
    """Feature name (and category) -> reason code and text, from ``blink.reason_codes``.

    A row with a category applies to that category of a categorical feature; a row without
    one to every value of the feature; the '*' row to every feature without a row.
    """

    def __init__(self, entries: dict[str, ReasonText],
                 by_category: dict[tuple[str, str], ReasonText] | None = None) -> None:
        self._entries = dict(entries)
        self._by_category = dict(by_category or {})
        if DEFAULT_KEY not in self._entries:
            # The table keeps its '*' row (a trigger refuses its removal); a copy here
            # would be a second source of the text.
            raise BlinkError("blink.reason_codes has no default row (feature_name '*')")
        self.default = self._entries.pop(DEFAULT_KEY)

    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, Any]]) -> ReasonTable:
        """Rows with ``feature_name``, ``code``, ``reason_text``, ``missing_reason_text`` and
        ``category``."""
        entries, by_category = {}, {}
        for r in rows:
            text = ReasonText(r["code"], r["reason_text"], r.get("missing_reason_text"))
            if r.get("category") is None:
                entries[r["feature_name"]] = text
            else:
                by_category[(r["feature_name"], r["category"])] = text
        return cls(entries, by_category)

    def lookup(self, feature: str, value: Any = None) -> ReasonText:
        """The text for ``feature`` with ``value`` (as the user gave it; None when missing)."""
        if self._by_category:
            key = category_key(value)
            if key is not None and (feature, key) in self._by_category:
                return self._by_category[(feature, key)]
        return self._entries.get(feature, self.default)


def shap_values(booster: Any, matrix: Any) -> Any:
    """Exact TreeSHAP contributions, one thread: shape (n, features + 1), base value last.

    Parameters
    ----------
    booster : lightgbm.Booster, or anything with ``contributions(matrix)``
        (pyfuncs.model.LoadedModel, pyfuncs.predictor.BoosterPredictor)
    matrix : array_like, shape (n_rows, n_features), NaN for missing
    """
    import numpy as np

    if hasattr(booster, "contributions"):
        return booster.contributions(matrix)
    data = np.asarray(matrix, dtype=np.float64)
    return booster.predict(data, pred_contrib=True, num_threads=1)


def top_reasons(contributions: Any, matrix: Any, spec: FeatureSpec, table: ReasonTable,
                top: int = TOP_REASONS) -> list[list[dict[str, Any]]]:
    """The ``top`` reasons of every row, largest SHAP value (towards default) first.

    Parameters
    ----------
    contributions : ndarray, shape (n_rows, n_features + 1)
        From :func:`shap_values` (the last column, the base value, is ignored here).
    matrix : ndarray, shape (n_rows, n_features)
        The model rows the contributions were computed on (categories as codes).
    spec : pyfuncs.features.FeatureSpec
        The model's features; turns a code back into the category the user gave.
    table : ReasonTable

    Returns
    -------
    list of list of dict
        Per row: ``{"rank", "feature", "code", "reason", "shap", "value"}``; ``value`` is the
        number or category (string, boolean) as given, None when the feature was missing
        (an unseen category too: the model read it as missing).
    """
    import numpy as np

    names = spec.names
    n_features = len(names)
    phi = np.asarray(contributions, dtype=np.float64)[:, :n_features]
    # Stable sort on -phi: ties keep the model's feature order, so results are deterministic.
    order = np.argsort(-phi, axis=1, kind="stable")[:, : min(top, n_features)]
    out: list[list[dict[str, Any]]] = []
    for row_phi, row_values, row_order in zip(phi.tolist(), np.asarray(matrix).tolist(),
                                              order.tolist(), strict=True):
        reasons = []
        for rank, j in enumerate(row_order, start=1):
            value = spec.display_value(j, row_values[j])
            reason = table.lookup(names[j], value)
            reasons.append({
                "rank": rank,
                "feature": names[j],
                "code": reason.code,
                "reason": reason.render(value),
                "shap": row_phi[j],
                "value": value,
            })
        out.append(reasons)
    return out


def explain_matrix(booster: Any, matrix: Any, spec: FeatureSpec, table: ReasonTable,
                   top: int = TOP_REASONS) -> list[list[dict[str, Any]]]:
    """SHAP values and the top reasons of every row of ``matrix`` (one pred_contrib call)."""
    return top_reasons(shap_values(booster, matrix), matrix, spec, table, top)


def to_json(reasons: list[list[dict[str, Any]]]) -> list[str]:
    """Each row's reasons as the JSON text stored in ``risk_score_audits.reasons``."""
    dumps = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
    return [dumps(r) for r in reasons]
