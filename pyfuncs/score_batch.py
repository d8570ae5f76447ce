"""Scoring many users in one call: blink_score_batch."""

from __future__ import annotations

from collections.abc import Sequence

from pyfuncs import audits, model, snapshots
from pyfuncs._typing import Any


def score_users(plpy: Any, GD: dict, user_ids: Sequence[str | None]) -> dict[str, Any]:
    """The champion's scores of ``user_ids`` as arrays aligned with the input.

    blink_native's batch (db/native/blink_native.c) calls this for the elements it leaves,
    or for the whole batch when it cannot take it, and on servers without the module. One
    SPI query finds each user's latest snapshot and its values; one native call scores
    them all. Arrays, not rows, go back to SQL (which unnests them): a row per user through
    PL/Python costs several times the prediction. Users without a snapshot get NULLs; a
    user whose snapshot cannot be scored gets its snapshot id and NULL scores, and one
    WARNING names the first few (so no user's data can fail another user's score).
    """
    import numpy as np

    champion = model.champion(plpy, GD)
    # Looked up in code point order (the index's order in a "C" or C.UTF-8 database, close
    # to it in others), consecutive lookups share the index's pages: ~15% faster on
    # shuffled ids (docs/benchmarks.md). Python's sort costs less than SQL's here.
    order = np.array(sorted(range(len(user_ids)), key=lambda i: user_ids[i] or ""),
                     dtype=np.int64)
    in_order = snapshots.latest_of_users(plpy, GD, [user_ids[i] for i in order], champion)
    ids, epochs, matrix, scorable = (_unsorted(values, order) for values in in_order[:4])
    invalid = in_order[4]
    audits.warn_invalid(plpy, invalid)
    have = (ids >= 0) & scorable  # id -1: the user has no snapshot
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
        "snapshot_ids": [None if i < 0 else int(i) for i in ids.tolist()],
        "snapshot_epochs": [None if i < 0 else e
                            for e, i in zip(epochs.tolist(), ids.tolist(), strict=True)],
    }


def _unsorted(values: Any, order: Any) -> Any:
    """``values`` given in ``order`` (a permutation), back in input order."""
    import numpy as np

    out = np.empty_like(values)
    out[order] = values
    return out
