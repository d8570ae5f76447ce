"""Scoring many users in one call: blink_score_batch."""

from __future__ import annotations

from collections.abc import Sequence

from pyfuncs import model, snapshots
from pyfuncs._typing import Any
from pyfuncs.errors import FeatureError


def score_users(plpy: Any, GD: dict, user_ids: Sequence[str | None]) -> dict[str, Any]:
    """The champion's scores of ``user_ids`` as arrays aligned with the input.

    One SPI query finds each user's latest snapshot and its values; one native call scores
    them all. Arrays, not rows, go back to SQL (which unnests them): a row per user through
    PL/Python costs several times the prediction. A snapshot with an invalid value is an
    error naming it, as in blink_score. Users without a snapshot get NULLs.
    """
    import numpy as np

    champion = model.champion(plpy, GD)
    ids, epochs, matrix, invalid = snapshots.latest_of_users(plpy, GD, user_ids,
                                                             champion.feature_names)
    if invalid:
        raise FeatureError(invalid[0])
    have = ids >= 0  # id -1: the user has no snapshot
    scores = champion.score_batch(matrix[have])
    probabilities = np.full(len(ids), np.nan)
    probabilities[have] = scores.probabilities
    decisions = np.full(len(ids), None, dtype=object)
    decisions[have] = scores.decisions
    bands = np.full(len(ids), None, dtype=object)
    bands[have] = scores.bands
    nulls = ~have
    return {
        "model_id": champion.id,
        "probabilities": [None if n else p for p, n in zip(probabilities.tolist(), nulls,
                                                             strict=True)]
        if nulls.any() else probabilities.tolist(),
        "decisions": decisions.tolist(),
        "bands": bands.tolist(),
        "snapshot_ids": [None if n else int(i) for i, n in zip(ids.tolist(), nulls, strict=True)],
        "snapshot_epochs": [None if n else e for e, n in zip(epochs.tolist(), nulls, strict=True)],
    }
