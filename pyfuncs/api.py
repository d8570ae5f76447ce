"""Entry points of the SQL functions: each PL/Python body is one call into this module.

Each entry point is ``@sql_function``: a BlinkError leaves as an SQL error with blink's
message, SQLSTATE and hint. Modules a scoring call does not need are imported on first use,
so a new session's first ``blink_score`` stays cheap.
"""

from __future__ import annotations

from pyfuncs import score
from pyfuncs._typing import Any
from pyfuncs.errors import sql_function


@sql_function
def score_snapshot(plpy: Any, GD: dict, model_id: int | None, user_id: str,
                   snapshot_id: int | None, vector: bytes | None,
                   document: str | None) -> float | None:
    """blink_score(user_id), after SQL fetched the champion id and the latest snapshot."""
    return score.score_snapshot(plpy, GD, model_id, user_id, snapshot_id, vector, document)


@sql_function
def score_features(plpy: Any, GD: dict, document: str) -> float:
    """blink_score_features(features)."""
    return score.score_features(plpy, GD, document)


@sql_function
def decide(plpy: Any, GD: dict, user_id: str) -> list[dict[str, Any]]:
    """blink_decide(user_id)."""
    return score.decide(plpy, GD, user_id)


@sql_function
def score_batch(plpy: Any, GD: dict, user_ids: list[str | None]) -> dict[str, Any]:
    """blink_score_batch(user_ids), as arrays aligned with ``user_ids``."""
    from pyfuncs import score_batch

    return score_batch.score_users(plpy, GD, user_ids)


@sql_function
def explain(plpy: Any, GD: dict, user_id: str) -> list[dict[str, Any]]:
    """blink_explain(user_id)."""
    from pyfuncs import explain

    return explain.explain_user(plpy, GD, user_id)


@sql_function
def rescore_pending(plpy: Any, GD: dict, max_users: int, max_seconds: float,
                    batch_size: int, worker: int = 0, workers: int = 1) -> str:
    """blink_rescore_pending(...): one bounded rescoring run; returns its summary as JSON."""
    import json

    from pyfuncs import rescore

    limits = rescore.Limits.checked(max_users, max_seconds, batch_size, worker, workers)
    return json.dumps(rescore.rescore_pending(plpy, GD, limits))


@sql_function
def check_rescore_limits(plpy: Any, GD: dict, max_users: int, max_seconds: float,
                         workers: int) -> None:
    """blink.check_rescore_limits(...): blink_schedule's check of its jobs' arguments."""
    from pyfuncs import rescore

    rescore.Limits.checked(max_users, max_seconds, rescore.Limits.batch_size, 0, workers)


@sql_function
def monitor_run(plpy: Any, GD: dict, as_of: Any, max_seconds: float, recompute: bool) -> str:
    """blink_monitor_run(...): one monitoring run; returns its summary as JSON."""
    import json

    from pyfuncs.monitoring import run

    return json.dumps(run.monitor(plpy, GD, as_of, max_seconds, recompute), default=str)


@sql_function
def promote(plpy: Any, GD: dict, model_id: int, reason: str,
            review: str | None = None) -> dict[str, Any]:
    """blink_promote(model_id, reason, review)."""
    from pyfuncs import deploy

    return deploy.promote(plpy, GD, model_id, reason, review)


@sql_function
def rollback(plpy: Any, GD: dict, reason: str) -> dict[str, Any]:
    """blink_rollback(reason)."""
    from pyfuncs import deploy

    return deploy.rollback(plpy, GD, reason)


@sql_function
def vet_model(plpy: Any, GD: dict, model_id: int) -> str:
    """blink.vet_model(model_id): build and check the model's library in a separate process."""
    import json

    from pyfuncs import vet

    return json.dumps(vet.vet_model(plpy, GD, model_id))


@sql_function
def check_model_row(plpy: Any, GD: dict, TD: dict[str, Any]) -> str | None:
    """Trigger on blink_models inserts: check the new row, fill its default risk bands."""
    from pyfuncs import vet

    return "MODIFY" if vet.check_new_model(TD["new"]) else None
