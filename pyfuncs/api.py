"""Entry points of the SQL functions: each PL/Python body is one call into this module."""

from __future__ import annotations

import math

from pyfuncs import deployments, features, store
from pyfuncs._typing import Any
from pyfuncs.cache import session_cache
from pyfuncs.errors import BlinkError, NoChampionError, UnknownModelError
from pyfuncs.model import LoadedModel, load_model


class reported:  # noqa: N801 - used like a function: ``with reported(plpy):``
    """Report a BlinkError as an SQL error with its own SQLSTATE and hint.

    A class rather than @contextmanager: contextlib is a few ms of every cold start.
    """

    def __init__(self, plpy: Any) -> None:
        self.plpy = plpy

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, traceback: Any) -> None:
        if isinstance(exc, BlinkError):
            self.plpy.error(str(exc), hint=exc.hint, sqlstate=exc.sqlstate)


def model(plpy: Any, GD: dict, model_id: int | None) -> LoadedModel:
    """The loaded model ``model_id`` (the champion's id, usually), from the session cache."""
    if model_id is None:
        raise NoChampionError()

    def load(mid: int) -> LoadedModel:
        row = store.one(plpy, GD, "model", mid)
        if row is None:
            raise UnknownModelError(f"no model with id {mid} in blink.blink_models")

        def fetch_text() -> str:
            return store.one(plpy, GD, "model_text", mid)["model_text"]  # type: ignore[index]

        return load_model(row, fetch_text, plpy.warning)

    return session_cache(GD).get(int(model_id), load)


def _score_latest(plpy: Any, GD: dict, user_id: str) -> tuple[LoadedModel, dict | None, float]:
    row = store.one(plpy, GD, "champion_and_snapshot", user_id)
    champion = model(plpy, GD, row["model_id"] if row else None)
    if row is None or row["snapshot_id"] is None:
        return champion, None, math.nan
    where = f"in snapshot {row['snapshot_id']} of user {user_id!r}"
    values = features.to_vector(
        features.parse_document(row["features"]), champion.feature_names,
        allow_unknown=True, where=where,
    )
    return champion, row, champion.predict_row(values)


def score_snapshot(plpy: Any, GD: dict, model_id: int | None, user_id: str,
                   snapshot_id: int | None, document: str | None) -> float | None:
    """blink_score(user_id), after SQL fetched the champion id and the latest snapshot.

    The lookup runs in PL/pgSQL because a PL/Python SPI call costs more than the whole
    prediction (it opens a subtransaction); this half needs no SPI once the model is cached.
    """
    try:
        champion = model(plpy, GD, model_id)
        if snapshot_id is None or document is None:
            return None
        values = features.to_vector(
            features.parse_document(document), champion.feature_names, allow_unknown=True,
            where=f"in snapshot {snapshot_id} of user {user_id!r}",
        )
        return champion.predict_row(values)
    except BlinkError as exc:
        plpy.error(str(exc), hint=exc.hint, sqlstate=exc.sqlstate)
    return None  # unreachable: plpy.error raises


def score_features(plpy: Any, GD: dict, document: str) -> float:
    """blink_score_features(features): probability of default for an ad-hoc document."""
    with reported(plpy):
        row = store.one(plpy, GD, "champion")
        champion = model(plpy, GD, row["model_id"] if row else None)
        values = features.to_vector(
            features.parse_document(document), champion.feature_names,
            allow_unknown=False, where="in the feature document",
        )
        return champion.predict_row(values)
    return math.nan  # unreachable


def decide(plpy: Any, GD: dict, user_id: str) -> list[dict[str, Any]]:
    """blink_decide(user_id): one row with the decision, or no row without a snapshot."""
    with reported(plpy):
        champion, snapshot, probability = _score_latest(plpy, GD, user_id)
        if snapshot is None:
            return []
        decision, band = champion.policy.decide(probability)
        return [{
            "user_id": user_id,
            "probability_default": probability,
            "decision": decision,
            "risk_band": band,
            "model_id": champion.id,
            "model_version": champion.version,
            "snapshot_id": snapshot["snapshot_id"],
            "snapshot_at": snapshot["snapshot_at"],
        }]
    return []  # unreachable


def promote(plpy: Any, GD: dict, model_id: int, reason: str) -> dict[str, Any]:
    """blink_promote(model_id, reason): load and smoke-test the model, then make it champion."""
    with reported(plpy):
        candidate = model(plpy, GD, model_id)
        probability = candidate.predict_row([math.nan] * len(candidate.feature_names))
        if not 0.0 <= probability <= 1.0:
            raise BlinkError(
                f"model {model_id} is not a probability model: it scored an empty row "
                f"as {probability}"
            )
        return deployments.promote(plpy, GD, model_id, reason)
    return {}  # unreachable


def rollback(plpy: Any, GD: dict, reason: str) -> dict[str, Any]:
    """blink_rollback(reason): return to the previous champion."""
    with reported(plpy):
        return deployments.rollback(plpy, GD, reason)
    return {}  # unreachable


# --- rescoring, explanations and batch scoring (issue 4) ---


def rescore_pending(plpy: Any, GD: dict, max_users: int, max_seconds: float,
                    batch_size: int) -> str:
    """blink_rescore_pending(...): one bounded rescoring run; returns its summary as JSON."""
    import json

    from pyfuncs import rescore

    with reported(plpy):
        limits = rescore.Limits.checked(max_users, max_seconds, batch_size)
        summary = rescore.rescore_pending(plpy, GD, lambda mid: model(plpy, GD, mid), limits)
        return json.dumps(summary)
    return "{}"  # unreachable


def explain(plpy: Any, GD: dict, user_id: str) -> list[dict[str, Any]]:
    """blink_explain(user_id): the champion's top reasons for the user's latest snapshot."""
    from pyfuncs import audit

    with reported(plpy):
        return audit.explain_user(plpy, GD, user_id, lambda mid: model(plpy, GD, mid))
    return []  # unreachable


def score_batch(plpy: Any, GD: dict, user_ids: list[str | None]) -> dict[str, Any]:
    """blink_score_batch(user_ids): the scores as arrays aligned with ``user_ids``."""
    from pyfuncs import audit

    with reported(plpy):
        row = store.one(plpy, GD, "champion")
        champion = model(plpy, GD, row["model_id"] if row else None)
        return audit.score_users(plpy, GD, user_ids, champion)
    return {}  # unreachable
