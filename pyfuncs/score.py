"""Scoring one user or one document: blink_score, blink_score_features, blink_decide."""

from __future__ import annotations

from pyfuncs import features, model, queries
from pyfuncs._typing import Any
from pyfuncs.errors import NotVettedError, UnknownModelError


def document_vector(champion: model.LoadedModel, document: str, *, stored: bool,
                    where: str) -> list[float]:
    """One feature document (JSON text) as ``champion``'s input row.

    A stored snapshot may carry features the model does not use; an ad-hoc document may
    not (an unknown name is most likely a typo that would silently score as missing).
    """
    return champion.spec.vector(features.parse_document(document), allow_unknown=stored,
                                where=where)


def score_document(champion: model.LoadedModel, document: str, *, stored: bool,
                   where: str) -> float:
    """Probability of default of one feature document under ``champion``."""
    return champion.predict_row(document_vector(champion, document, stored=stored,
                                                where=where))


def snapshot_place(snapshot_id: int, user_id: str) -> str:
    """How errors name a stored snapshot."""
    return f"in snapshot {snapshot_id} of user {user_id!r}"


def score_snapshot(plpy: Any, GD: dict, model_id: int | None, user_id: str,
                   snapshot_id: int | None, vector: bytes | None,
                   document: str | None) -> float | None:
    """blink_score(user_id) where blink_native does not answer (db/native/blink_native.c),
    after blink.score_user (PL/pgSQL) fetched the champion id and the latest snapshot.

    The lookup runs in PL/pgSQL because a PL/Python SPI call costs more than the whole
    prediction (it opens a subtransaction); this half needs no SPI once the model is cached.
    SQL passes the stored vector when it was built for the champion's layout, else the
    document (never both): the vector goes to the library as it is stored.

    The champion id comes from the catalog (blink.champion_model_id()), which is always the
    latest committed one; a transaction whose snapshot began before that promotion may not
    see the model's rows yet, and then scores with the champion its snapshot sees.
    """
    try:
        champion = model.loaded(plpy, GD, model_id)
    except (UnknownModelError, NotVettedError):  # as this snapshot sees it: the same error
        return score_as_of_snapshot(plpy, GD, user_id)
    if snapshot_id is None:
        return None
    if vector is not None:
        return champion.predict_stored(vector)
    if document is None:
        return None
    return score_document(champion, document, stored=True,
                          where=snapshot_place(snapshot_id, user_id))


def champion_and_latest(plpy: Any, GD: dict,
                        user_id: str) -> tuple[model.LoadedModel, dict[str, Any] | None]:
    """The champion and the user's latest snapshot (None without one), both as this
    transaction's snapshot sees them: one query."""
    row = queries.one(plpy, GD, "champion_and_snapshot", user_id)
    champion = model.loaded(plpy, GD, row["model_id"] if row else None)
    return champion, (row if row is not None and row["snapshot_id"] is not None else None)


def score_as_of_snapshot(plpy: Any, GD: dict, user_id: str) -> float | None:
    """blink_score(user_id) with the champion this transaction's snapshot sees."""
    champion, row = champion_and_latest(plpy, GD, user_id)
    if row is None:
        return None
    return score_document(champion, row["features"], stored=True,
                          where=snapshot_place(row["snapshot_id"], user_id))


def score_features(plpy: Any, GD: dict, document: str) -> float:
    """blink_score_features(features): the champion's probability for an ad-hoc document."""
    return score_document(model.champion(plpy, GD), document, stored=False,
                          where="in the feature document")


def decide(plpy: Any, GD: dict, user_id: str) -> list[dict[str, Any]]:
    """blink_decide(user_id): one row with the decision, or no row without a snapshot."""
    champion, row = champion_and_latest(plpy, GD, user_id)
    if row is None:
        return []
    probability = score_document(champion, row["features"], stored=True,
                                 where=snapshot_place(row["snapshot_id"], user_id))
    decision, band = champion.policy.decide(probability)
    return [{
        "user_id": user_id,
        "probability_default": probability,
        "decision": decision,
        "risk_band": band,
        "model_id": champion.id,
        "model_version": champion.version,
        "snapshot_id": row["snapshot_id"],
        "snapshot_at": row["snapshot_at"],
    }]
