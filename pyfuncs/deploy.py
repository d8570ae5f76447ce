"""Which model is champion: an append-only history of promotions and rollbacks.

Every row names the champion from then on and ``rollback_to_id``, the deployment a rollback
from it returns to. That makes the history a stack: promote pushes, rollback pops, and both
are one INSERT; nothing is ever updated.
"""

from __future__ import annotations

import math

from pyfuncs import model, queries
from pyfuncs._typing import Any
from pyfuncs.errors import BlinkError, DeploymentError, NoChampionError


def _lock(plpy: Any, GD: dict) -> None:
    # Serialise promotions and rollbacks; scoring only reads and is not blocked.
    queries.run(plpy, GD, "lock_deployments")


def promote(plpy: Any, GD: dict, model_id: int, reason: str,
            review: str | None = None) -> dict[str, Any]:
    """Vet, load and smoke-test ``model_id``, then make it the champion.

    ``review`` (JSON, from the trainer) is recorded in blink.blink_promotion_reviews with
    this deployment, in this transaction: only this path can attach a review to a
    deployment. Returns the deployment row.
    """
    from pyfuncs import vet
    from pyfuncs.errors import InvalidArgumentError

    if model_id is None or not reason:
        raise InvalidArgumentError("blink_promote needs a model_id and a reason")
    vet.vet_model(plpy, GD, model_id)
    candidate = model.loaded(plpy, GD, model_id)
    probability = candidate.predict_row([math.nan] * len(candidate.feature_names))
    if not 0.0 <= probability <= 1.0:
        raise BlinkError(
            f"model {model_id} is not a probability model: it scored an empty row as "
            f"{probability}", hint="Train a binary model (objective binary).")
    _lock(plpy, GD)
    current = queries.one(plpy, GD, "champion_deployment")
    if current is not None and current["model_id"] == model_id:
        raise DeploymentError(f"model {model_id} is already the champion")
    rollback_to = current["id"] if current is not None else None
    row = queries.one(plpy, GD, "insert_deployment", model_id, "promote", reason, rollback_to)
    assert row is not None
    if current is not None:
        # Probation: the previous champion keeps scoring in shadow, so monitoring can compare
        # the two on the same loans and roll back (blink.monitoring_policy.probation).
        queries.run(plpy, GD, "probation_shadow", current["model_id"],
                    f"probation: champion before model {model_id}")
    if review is not None:
        queries.run(plpy, GD, "insert_promotion_review", model_id, row["id"], review)
    model.prune_library_files(plpy, GD)  # the candidate's file was written above, if new
    return row


def rollback(plpy: Any, GD: dict, reason: str) -> dict[str, Any]:
    """Return to the champion before the current one; returns the new deployment row."""
    _lock(plpy, GD)
    current = queries.one(plpy, GD, "champion_deployment")
    if current is None:
        raise NoChampionError()
    if current["rollback_to_id"] is None:
        raise DeploymentError(
            f"nothing to roll back to: model {current['model_id']} is the first champion"
        )
    target = queries.one(plpy, GD, "deployment", current["rollback_to_id"])
    assert target is not None
    row = queries.one(plpy, GD, "insert_deployment", target["model_id"], "rollback", reason,
                    target["rollback_to_id"])
    assert row is not None
    model.prune_library_files(plpy, GD)
    return row
