"""The monitoring reference: what a model saw on its out-of-time window, frozen with the model.

The trainer builds it when it writes the model (never from training rows), the insert
trigger checks it, and every monitoring run compares a cohort with it. It is JSON:

* ``features``: per feature, bin edges from the reference's own deciles (a categorical
  feature's bins are its category codes), the proportion of non-missing values per bin, and
  the missing rate. An unseen category counts as missing, as the model sees it.
* ``score``: the probability's decile edges and proportions, the approval rate at the
  model's threshold, the share of each risk band, and the confidence-based AUC estimate.
* ``outcomes``: the realised ROC AUC (with DeLong's sampling error), calibration error and
  default rate on the out-of-time loans: the bounds realised performance is held to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyfuncs._typing import Any
from pyfuncs.decision import is_finite_number as _finite
from pyfuncs.errors import InvalidArgumentError
from pyfuncs.features import FeatureSpec
from pyfuncs.monitoring import stats

VERSION = 1
BINS = 10


def _proportions(counts: np.ndarray) -> list[float]:
    total = float(counts.sum())
    return [float(c) / total for c in counts] if total else [1.0 / len(counts)] * len(counts)


def feature_edges(spec: FeatureSpec, j: int, values: np.ndarray, bins: int = BINS) -> list[float]:
    """Bin edges of feature ``j``: deciles, or half-way between category codes."""
    if spec.is_categorical(j):
        return [k + 0.5 for k in range(len(spec.categories[spec.names[j]]) - 1)]
    return stats.quantile_edges(values, bins)


def build_reference(spec: FeatureSpec, X: np.ndarray, probabilities: np.ndarray, *,
                    decision_threshold: float, bands: Sequence[tuple[float, str]],
                    window: dict[str, Any], outcomes: tuple[np.ndarray, np.ndarray] | None,
                    bins: int = BINS) -> dict[str, Any]:
    """The reference of a model from its out-of-time rows.

    Parameters
    ----------
    spec, X
        The model's features and one row per user of the out-of-time window (codes, NaN for
        missing), as :meth:`FeatureSpec.vector` makes them.
    probabilities
        The model's probability of default for each row of ``X``.
    decision_threshold, bands
        The model's decision rule: declined at ``p >= threshold``; bands as (upper, name).
    window
        Where the rows come from (stored as is, for people).
    outcomes
        ``(y, p)`` on the out-of-time loans, for the realised-performance bounds; or None.
    """
    X = np.asarray(X, dtype=float)
    p = np.asarray(probabilities, dtype=float)
    if X.ndim != 2 or X.shape[1] != len(spec) or len(X) != len(p) or len(p) == 0:
        raise InvalidArgumentError(
            f"reference rows must be a non-empty (rows, {len(spec)}) matrix with one "
            f"probability per row, got {X.shape} and {p.shape}")
    features = {}
    for j, name in enumerate(spec.names):
        column = X[:, j]
        edges = feature_edges(spec, j, column, bins)
        features[name] = {
            "kind": "categorical" if spec.is_categorical(j) else "numeric",
            "edges": edges,
            "proportions": _proportions(stats.bin_counts(column, edges)),
            "missing_rate": float(np.isnan(column).mean()),
        }
    score_edges = stats.quantile_edges(p, bins)
    uppers = [u for u, _ in bands]
    cbpe = stats.cbpe_auc(p)
    reference: dict[str, Any] = {
        "version": VERSION,
        "rows": int(len(p)),
        "window": window,
        "features": features,
        "score": {
            "edges": score_edges,
            "proportions": _proportions(stats.bin_counts(p, score_edges)),
            "approval_rate": float(np.mean(p < decision_threshold)),
            "decision_threshold": float(decision_threshold),
            "bands": [name for _, name in bands],
            "band_uppers": [float(u) for u in uppers],
            "band_proportions": _proportions(stats.band_shares(p, uppers)),
            "mean_probability": float(p.mean()),
            "estimated_auc": cbpe.auc,
        },
        "outcomes": None,
    }
    if outcomes is not None:
        y, p_out = (np.asarray(a, dtype=float) for a in outcomes)
        auc = stats.auc_delong(y, p_out)
        cal = stats.calibration(y, p_out)
        reference["outcomes"] = {
            "rows": int(len(y)), "positives": int(y.sum()),
            "roc_auc": auc.auc, "roc_auc_standard_error": auc.standard_error,
            "ece": cal.ece, "ece_standard_error": cal.standard_error,
            "default_rate": cal.observed_rate, "predicted_rate": cal.predicted_rate,
        }
    return reference


def _fail(problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"monitoring_reference: {problem}",
                                hint="Build it with pyfuncs.monitoring.reference."
                                     "build_reference (the trainer does).")


def _check_distribution(where: str, entry: Any, edges_key: str = "edges") -> None:
    if not isinstance(entry, dict):
        raise _fail(f"{where} must be an object")
    edges, props = entry.get(edges_key), entry.get("proportions")
    if not isinstance(edges, list) or not all(_finite(e) for e in edges) \
            or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise _fail(f"{where}.{edges_key} must be increasing finite numbers")
    if not isinstance(props, list) or len(props) != len(edges) + 1 \
            or not all(_finite(q) and q >= 0 for q in props) or abs(sum(props) - 1) > 1e-6:
        raise _fail(f"{where}.proportions must be {len(edges) + 1} non-negative numbers "
                    "summing to 1")


def _check_rate(where: str, value: Any) -> None:
    if not _finite(value) or not 0 <= value <= 1:
        raise _fail(f"{where} must be a number in [0, 1], got {value!r}")


def check_reference(reference: Any, spec: FeatureSpec, n_bands: int) -> None:
    """Refuse a reference that monitoring could not use, naming the problem.

    Run by the insert trigger: a bad reference is refused with the model, not found out
    by the first monitoring run.
    """
    if not isinstance(reference, dict) or reference.get("version") != VERSION:
        raise _fail(f"must be an object with version {VERSION}")
    rows = reference.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise _fail(f"rows must be a positive integer, got {rows!r}")
    features = reference.get("features")
    if not isinstance(features, dict) or set(features) != set(spec.names):
        raise _fail("features must have one entry per model feature")
    for j, name in enumerate(spec.names):
        entry = features[name]
        _check_distribution(f'features."{name}"', entry)
        _check_rate(f'features."{name}".missing_rate', entry.get("missing_rate"))
        if spec.is_categorical(j) and len(entry["proportions"]) != len(spec.categories[name]):
            raise _fail(f'features."{name}" must have one bin per category')
    score = reference.get("score")
    _check_distribution("score", score)
    assert isinstance(score, dict)
    for key in ("approval_rate", "mean_probability", "estimated_auc"):
        _check_rate(f"score.{key}", score.get(key))
    uppers = score.get("band_uppers")
    if not isinstance(uppers, list) or len(uppers) != n_bands or not all(map(_finite, uppers)):
        raise _fail(f"score.band_uppers must be the {n_bands} risk bands' upper bounds")
    shares = score.get("band_proportions")
    if not isinstance(shares, list) or len(shares) != n_bands \
            or not all(_finite(q) and q >= 0 for q in shares) or abs(sum(shares) - 1) > 1e-6:
        raise _fail(f"score.band_proportions must be {n_bands} shares (one per risk band) "
                    "summing to 1")
    outcomes = reference.get("outcomes")
    if outcomes is not None:
        if not isinstance(outcomes, dict):
            raise _fail("outcomes must be an object or null")
        for key in ("roc_auc", "ece", "default_rate"):
            _check_rate(f"outcomes.{key}", outcomes.get(key))
        for key in ("roc_auc_standard_error", "ece_standard_error"):
            if not _finite(outcomes.get(key)) or outcomes[key] < 0:
                raise _fail(f"outcomes.{key} must be a non-negative number")
