"""Reading snapshots in batches: one SPI query builds every row's feature vector in SQL.

The query (pyfuncs.queries) returns the rows packed in one bytea; SQL converts the numbers,
and a row holding anything else (a string, a boolean, a number beyond float8) is flagged
and converted here by the same rules as blink_score (pyfuncs.features).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyfuncs import features, queries
from pyfuncs._typing import TYPE_CHECKING, Any
from pyfuncs.errors import FeatureError
from pyfuncs.features import FeatureSpec

if TYPE_CHECKING:
    from pyfuncs.model import LoadedModel


class SnapshotBatch:
    """Snapshots ready to score: ids and their feature matrix (rows aligned)."""

    __slots__ = ("ids", "matrix", "invalid")

    def __init__(self, ids: list[int], matrix: Any, invalid: list[Unscorable]) -> None:
        self.ids = ids
        self.matrix = matrix
        self.invalid = invalid  # the snapshots left out, each with its error


class Unscorable:
    """A snapshot that cannot be scored, and why (the message names the feature)."""

    __slots__ = ("snapshot_id", "user_id", "error")

    def __init__(self, snapshot_id: int, user_id: str, error: str) -> None:
        self.snapshot_id = snapshot_id
        self.user_id = user_id
        self.error = error


def unpack_rows(data: bytes | None, num_features: int, *,
                with_epoch: bool) -> tuple[Any, Any, Any]:
    """(ids, epochs or None, matrix) from the packed rows of the batch queries.

    Each row is ``int8send(id) || [float8send(epoch)] || float8send(value) ...`` (big
    endian), one bytea for the whole batch: PL/Python hands it over as one bytes object,
    where a float8[] would be converted element by element into Python floats, at a cost
    higher than the query's. Missing values and rows are NaN (a row without a snapshot has
    id -1).
    """
    import numpy as np

    fields = [("id", ">i8")] + ([("epoch", ">f8")] if with_epoch else [])
    dtype = np.dtype(fields + [("values", ">f8", (num_features,))])
    raw = data or b""
    if len(raw) % dtype.itemsize:
        raise ValueError(f"packed rows of {dtype.itemsize} bytes expected, got {len(raw)} bytes")
    rows = np.frombuffer(raw, dtype=dtype)
    matrix = rows["values"].astype(np.float64).reshape(len(rows), num_features)  # writable
    epochs = rows["epoch"].astype(np.float64) if with_epoch else None
    return rows["id"].astype(np.int64), epochs, matrix


def values_query(plpy: Any, GD: dict, kind: str, model: LoadedModel,
                 arg: list[Any]) -> dict[str, Any]:
    """Run the batch values query (``kind`` "ids" or "users") for this model's features.

    Stored vectors built for the model's layout are read as they are. Otherwise the fast
    form casts numbers straight to float8; a number beyond float8's range makes it fail
    (SQLSTATE 22003), and the batch is read again with the slower form that cannot fail.
    """
    plans = GD.setdefault("blink.value_plans", {})
    spec = model.spec

    def plan(safe: bool) -> Any:
        key = (kind, safe, tuple(spec.names), repr(spec.categories), model.layout)
        if key not in plans:
            if kind == "ids":
                plans[key] = plpy.prepare(
                    queries.snapshots_by_id_sql(spec, safe=safe, layout=model.layout),
                    ["bigint[]"])
            else:
                plans[key] = plpy.prepare(
                    queries.latest_snapshots_sql(spec, safe=safe, layout=model.layout),
                    ["text[]"])
        return plans[key]

    try:
        with plpy.subtransaction():
            return plpy.execute(plan(False), [arg])[0]
    except plpy.SPIError as exc:
        if getattr(exc, "sqlstate", None) != "22003":  # numeric_value_out_of_range
            raise
    return plpy.execute(plan(True), [arg])[0]


def convert_flagged(plpy: Any, GD: dict, ids: list[int], matrix: Any,
                    flagged: list[int] | None,
                    spec: FeatureSpec) -> tuple[Any, list[Unscorable]]:
    """Convert the rows SQL flagged in Python; returns (rows to keep, the rows dropped)."""
    import numpy as np

    keep = np.ones(len(ids), dtype=bool)
    invalid: list[Unscorable] = []
    if not flagged:
        return keep, invalid
    positions: dict[int, list[int]] = {}
    for i, sid in enumerate(ids):
        positions.setdefault(sid, []).append(i)
    for doc in queries.run(plpy, GD, "snapshot_documents", sorted(set(flagged))):
        where = f"in snapshot {doc['id']} of user {doc['user_id']!r}"
        try:
            vector = spec.vector(features.parse_document(doc["features"]), allow_unknown=True,
                                 where=where)
        except FeatureError as exc:
            keep[positions[doc["id"]]] = False
            invalid.append(Unscorable(int(doc["id"]), doc["user_id"], str(exc)))
        else:
            matrix[positions[doc["id"]]] = vector
    return keep, invalid


def by_id(plpy: Any, GD: dict, snapshot_ids: Sequence[int],
          model: LoadedModel) -> SnapshotBatch:
    """The snapshots ``snapshot_ids`` (ascending), ready for ``model``; invalid ones left out."""
    spec = model.spec
    row = values_query(plpy, GD, "ids", model, list(snapshot_ids))
    id_array, _, matrix = unpack_rows(row["packed"], len(spec), with_epoch=False)
    ids: list[int] = id_array.tolist()
    keep, invalid = convert_flagged(plpy, GD, ids, matrix, row["bad"], spec)
    if invalid:
        ids = [sid for sid, k in zip(ids, keep, strict=True) if k]
        matrix = matrix[keep]
    return SnapshotBatch(ids, matrix, invalid)


def latest_of_users(plpy: Any, GD: dict, user_ids: Sequence[str | None],
                    model: LoadedModel) -> tuple[Any, Any, Any, Any, list[Unscorable]]:
    """Each user's latest snapshot in input order: (ids, epochs, matrix, scorable, invalid).

    A user without a snapshot has id -1 and a row of NaNs; ``scorable`` is False for the
    rows whose snapshot cannot be scored (listed in ``invalid``).
    """
    spec = model.spec
    row = values_query(plpy, GD, "users", model, list(user_ids))
    ids, epochs, matrix = unpack_rows(row["packed"], len(spec), with_epoch=True)
    scorable, invalid = convert_flagged(plpy, GD, ids.tolist(), matrix, row["bad"],
                                        spec)
    return ids, epochs, matrix, scorable, invalid
