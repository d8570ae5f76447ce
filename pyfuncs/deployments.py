"""Which model is champion: an append-only history of promotions and rollbacks.

Every row names the champion from then on and ``rollback_to_id``, the deployment a rollback
from it returns to. That makes the history a stack: promote pushes, rollback pops, and both
are one INSERT; nothing is ever updated.
"""

from __future__ import annotations

from pyfuncs import store
from pyfuncs._typing import Any
from pyfuncs.errors import DeploymentError, NoChampionError, UnknownModelError


def _lock(plpy: Any) -> None:
    # Serialise promotions and rollbacks; scoring only reads and is not blocked.
    plpy.execute("LOCK TABLE blink.blink_deployments IN EXCLUSIVE MODE")


def promote(plpy: Any, GD: dict, model_id: int, reason: str) -> dict[str, Any]:
    """Make ``model_id`` the champion; returns the new deployment row."""
    _lock(plpy)
    if store.one(plpy, GD, "model_exists", model_id) is None:
        raise UnknownModelError(f"no model with id {model_id} in blink.blink_models")
    current = store.one(plpy, GD, "latest_deployment")
    if current is not None and current["model_id"] == model_id:
        raise DeploymentError(f"model {model_id} is already the champion")
    rollback_to = current["id"] if current is not None else None
    row = store.one(plpy, GD, "insert_deployment", model_id, "promote", reason, rollback_to)
    assert row is not None
    return row


def rollback(plpy: Any, GD: dict, reason: str) -> dict[str, Any]:
    """Return to the champion before the current one; returns the new deployment row."""
    _lock(plpy)
    current = store.one(plpy, GD, "latest_deployment")
    if current is None:
        raise NoChampionError()
    if current["rollback_to_id"] is None:
        raise DeploymentError(
            f"nothing to roll back to: model {current['model_id']} is the first champion"
        )
    target = store.one(plpy, GD, "deployment", current["rollback_to_id"])
    assert target is not None
    row = store.one(plpy, GD, "insert_deployment", target["model_id"], "rollback", reason,
                    target["rollback_to_id"])
    assert row is not None
    return row
