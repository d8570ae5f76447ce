"""The training set: matured outcomes joined point-in-time with snapshots, split by time.

The database does the point-in-time join (one index descent per outcome); everything after
it (maturity, labels, the feature matrix, the temporal split, the bad-input checks) is pure
Python over the fetched rows, so it is tested without a database.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from pyfuncs.errors import FeatureError
from pyfuncs.features import FeatureSpec
from trainer.errors import TrainingDataError

log = logging.getLogger("trainer")

BAD_OUTCOMES = ("defaulted", "delinquent")  # the label: ever fell into default or delinquency

# For each outcome issued before the cut-off, the user's latest snapshot taken strictly before
# the advance was issued: never one from the same instant or later (no look-ahead).
POINT_IN_TIME_SQL = """
SELECT o.id, o.user_id, o.issued_at, o.due_at, o.outcome, o.observed_at,
       s.id AS snapshot_id, s.snapshot_at, s.features::text AS features
FROM blink.repayment_outcomes o
LEFT JOIN LATERAL blink.latest_snapshot(o.user_id, before => o.issued_at) s ON true
WHERE o.issued_at < %(cutoff)s
ORDER BY o.issued_at, o.id
"""


@dataclass
class OutcomeRow:
    """One advance with its outcome and the snapshot the point-in-time join gave it."""

    id: int
    user_id: str
    issued_at: datetime
    due_at: datetime
    outcome: str
    observed_at: datetime
    snapshot_id: int | None
    snapshot_at: datetime | None
    features: dict[str, Any] | None


def fetch_rows(conn: Any, cutoff: datetime, progress: bool = False) -> list[OutcomeRow]:
    """All outcomes issued before ``cutoff``, each with its point-in-time snapshot."""
    from tqdm import tqdm

    rows: list[OutcomeRow] = []
    # A server-side cursor streams big histories; it lives in a (read-only) transaction.
    with conn.transaction(), conn.cursor(name="blink_training_rows") as cur:
        cur.itersize = 5000
        cur.execute(POINT_IN_TIME_SQL, {"cutoff": cutoff})
        for r in tqdm(cur, desc="reading outcomes", unit=" rows", disable=not progress):
            rows.append(OutcomeRow(
                id=r[0], user_id=r[1], issued_at=r[2], due_at=r[3], outcome=r[4],
                observed_at=r[5], snapshot_id=r[6], snapshot_at=r[7],
                features=None if r[8] is None else json.loads(r[8]),
            ))
    return rows


def fetch_rows_from_shards(urls: list[str], cutoff: datetime,
                           progress: bool = False) -> list[OutcomeRow]:
    """``fetch_rows`` of every shard, merged in the single-server order.

    A user's snapshots and outcomes live on one shard, so the point-in-time join is exact
    per shard. Ties on (issued_at, id) across shards are broken by user_id, so the merge
    does not depend on the order the URLs are given in.
    """
    import psycopg

    rows: list[OutcomeRow] = []
    for url in urls:
        try:
            conn = psycopg.connect(url, autocommit=True, application_name="blink-trainer")
        except psycopg.Error as exc:
            raise TrainingDataError(f"cannot read training data from shard {url}: "
                                    f"{str(exc).strip()}") from None
        with conn:
            rows.extend(fetch_rows(conn, cutoff, progress=progress))
    rows.sort(key=lambda r: (r.issued_at, r.id, r.user_id))
    return rows


def matured(row: OutcomeRow, cutoff: datetime, grace: timedelta) -> bool:
    """Whether ``row``'s outcome was final and known at ``cutoff``.

    Both the outcome window (due date + grace) must have closed and the outcome must have
    been observed by then. Early-known defaults of advances still running are left out too:
    keeping them while their not-yet-repaid siblings are missing would inflate the default
    rate of the newest weeks.
    """
    return row.due_at + grace <= cutoff and row.observed_at <= cutoff


def labels(rows: list[OutcomeRow]) -> np.ndarray:
    """1 for an advance that ever fell into default or delinquency, else 0."""
    return np.array([int(r.outcome in BAD_OUTCOMES) for r in rows], dtype=np.int32)


@dataclass
class Split:
    """Row indices of the three periods, oldest to newest, and their time windows."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    windows: dict[str, dict[str, str]]

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "valid": self.valid, "test": self.test}


def temporal_split(issued_at: list[datetime], valid_fraction: float,
                   test_fraction: float) -> Split:
    """Split rows by issue time: train on the oldest, validate on the next, test on the newest.

    Boundaries are issue times at the row quantiles; rows issued at the same instant as a
    boundary go to the later period, so no instant straddles two periods.
    """
    n = len(issued_at)
    if n == 0:
        raise TrainingDataError("no rows to split")
    order = np.argsort(np.array([t.timestamp() for t in issued_at]), kind="stable")
    times = [issued_at[i] for i in order]
    cut_valid = times[min(n - 1, int(np.floor(n * (1 - valid_fraction - test_fraction))))]
    cut_test = times[min(n - 1, int(np.floor(n * (1 - test_fraction))))]
    stamps = np.array([t.timestamp() for t in issued_at])
    train = np.flatnonzero(stamps < cut_valid.timestamp())
    valid = np.flatnonzero((stamps >= cut_valid.timestamp()) & (stamps < cut_test.timestamp()))
    test = np.flatnonzero(stamps >= cut_test.timestamp())
    windows = {}
    for name, idx in (("train", train), ("valid", valid), ("test", test)):
        if len(idx) == 0:
            raise TrainingDataError(
                f"the {name} period is empty: {n} rows issued over too few distinct times "
                "to split train / validation / out-of-time test")
        windows[name] = {"from": min(issued_at[i] for i in idx).isoformat(),
                         "to": max(issued_at[i] for i in idx).isoformat()}
    return Split(train, valid, test, windows)


def discover_features(documents: list[dict[str, Any]]) -> list[str]:
    """Every key seen in the documents, sorted (a deterministic model feature order)."""
    names: set[str] = set()
    for doc in documents:
        names.update(doc)
    return sorted(names)


def _kind(value: Any) -> str | None:
    """"number", "category" (a string or boolean) or None (missing; anything else is left to
    FeatureSpec, which names the problem)."""
    if isinstance(value, bool | str):
        return "category"
    if isinstance(value, int | float):
        return "number"
    return None


def infer_categories(rows: list[OutcomeRow], train: np.ndarray, names: list[str],
                     forced: list[str] | None = None) -> dict[str, list[str | bool]]:
    """Which features are categorical, and their categories (code = position in the list).

    A feature is categorical when its values are strings or booleans (or the config says so);
    mixing numbers with text in one feature is an error naming a snapshot of each. The
    categories are those seen in the training period (``train``: row indices), booleans
    first, then strings, sorted: a category first seen later scores as unseen (missing), as
    it will in production.
    """
    forced_set = set(forced or [])
    unknown = sorted(forced_set - set(names))
    if unknown:
        raise TrainingDataError(f"categorical feature(s) {', '.join(unknown)} are not among "
                                f"the model's features ({', '.join(names)})")
    first: dict[tuple[str, str], OutcomeRow] = {}  # (feature, kind) -> first row with it
    for row in rows:
        for name, value in (row.features or {}).items():
            kind = _kind(value)
            if kind is not None and (name, kind) not in first:
                first[(name, kind)] = row
    categorical = []
    for name in names:
        text, number = first.get((name, "category")), first.get((name, "number"))
        if text is not None and number is not None:
            raise TrainingDataError(
                f"feature {name} mixes numbers and text: {_show(number, name)} but "
                f"{_show(text, name)}; make it one or the other in the feature store")
        if name in forced_set and number is not None:
            raise TrainingDataError(
                f"feature {name} is configured categorical but holds numbers, e.g. "
                f"{_show(number, name)}; store its values as JSON strings")
        if text is not None or name in forced_set:
            categorical.append(name)
    categories: dict[str, list[str | bool]] = {}
    for name in categorical:
        seen = {v for i in train if isinstance(v := (rows[i].features or {}).get(name),
                                                 bool | str)}
        if not seen:
            raise TrainingDataError(
                f"categorical feature {name} has no value in any snapshot of the training "
                "period; drop it from the config's features or fix the feature store")
        categories[name] = sorted(seen, key=lambda v: (isinstance(v, str), v))
        if len(seen) > MANY_CATEGORIES:
            log.warning("feature %s has %d categories in the training period: is it really "
                        "categorical (an id or free text would not generalise)?", name, len(seen))
    return categories


MANY_CATEGORIES = 1000


def _show(row: OutcomeRow, name: str) -> str:
    value = (row.features or {}).get(name)
    return f"{json.dumps(value)} in snapshot {row.snapshot_id} of user {row.user_id!r}"


def feature_matrix(rows: list[OutcomeRow], spec: FeatureSpec) -> np.ndarray:
    """The rows' snapshot values as model rows (``spec``); absent or null is NaN (missing).

    A value of the wrong type is an error naming the feature, the snapshot and the user.
    """
    matrix = np.empty((len(rows), len(spec)), dtype=np.float64)
    for i, row in enumerate(rows):
        where = f"in snapshot {row.snapshot_id} of user {row.user_id!r}"
        try:
            matrix[i] = spec.vector(row.features or {}, allow_unknown=True, where=where)
        except FeatureError as exc:
            raise TrainingDataError(f"unusable training data: {exc}") from None
    return matrix


@dataclass
class Dataset:
    """The training set of one run, ready for LightGBM."""

    rows: list[OutcomeRow]
    spec: FeatureSpec  # feature names and the categories of categorical features
    X: np.ndarray
    y: np.ndarray
    split: Split
    cutoff: datetime
    grace: timedelta
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return self.spec.names

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        idx = self.split.parts()[name]
        return self.X[idx], self.y[idx]

    def documents(self, name: str) -> list[OutcomeRow]:
        return [self.rows[i] for i in self.split.parts()[name]]

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: {"rows": int(len(idx)), "positives": int(self.y[idx].sum())}
                for name, idx in self.split.parts().items()}

    def window(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff.isoformat(), "grace_days": self.grace.total_seconds() / 86400,
                **self.split.windows, "excluded": dict(self.excluded)}


def build_dataset(rows: list[OutcomeRow], cutoff: datetime, *, grace: timedelta,
                  features: list[str] | None, valid_fraction: float, test_fraction: float,
                  min_rows: int, min_positives: int,
                  categorical: list[str] | None = None) -> Dataset:
    """Check and assemble the training set from point-in-time rows (see module docstring).

    Raises
    ------
    TrainingDataError
        Too few usable rows, a period with a single class or too few defaults, a feature
        mixing numbers and text, or a feature with no value anywhere in the training period.
    """
    usable, immature, no_snapshot = [], 0, 0
    for row in rows:
        if not matured(row, cutoff, grace):
            immature += 1
        elif row.snapshot_id is None:
            no_snapshot += 1
        else:
            usable.append(row)
    excluded = {"not_matured": immature, "no_prior_snapshot": no_snapshot}
    log.info("outcomes issued before cut-off %s: %d; used %d; excluded %d not matured "
             "(due date + %g days or observation after the cut-off) and %d without a snapshot "
             "before issue", cutoff.isoformat(), len(rows), len(usable), immature,
             grace.total_seconds() / 86400, no_snapshot)
    if len(usable) < min_rows:
        raise TrainingDataError(
            f"too little data: {len(usable)} matured outcomes with a prior snapshot before "
            f"cut-off {cutoff.isoformat()} (of {len(rows)}; {immature} not matured, "
            f"{no_snapshot} without a snapshot before issue); need at least {min_rows}")
    y = labels(usable)
    if y.min() == y.max():
        kind = "bad (defaulted/delinquent)" if y[0] else "repaid"
        raise TrainingDataError(
            f"single class: all {len(usable)} usable outcomes are {kind}; a classifier needs both")
    names = list(features) if features is not None else discover_features(
        [r.features or {} for r in usable])
    if not names:
        raise TrainingDataError("no features: the snapshots joined to the outcomes are empty")
    split = temporal_split([r.issued_at for r in usable], valid_fraction, test_fraction)
    spec = FeatureSpec(names, infer_categories(usable, split.train, names, categorical))
    X = feature_matrix(usable, spec)
    for part, idx in split.parts().items():
        positives, count = int(y[idx].sum()), len(idx)
        if positives < min_positives or count - positives < min_positives:
            raise TrainingDataError(
                f"the {part} period ({split.windows[part]['from']} .. "
                f"{split.windows[part]['to']}) has {positives} bad and {count - positives} "
                f"good outcomes; need at least {min_positives} of each")
    empty = [n for j, n in enumerate(names) if np.isnan(X[split.train, j]).all()]
    if empty:
        raise TrainingDataError(
            f"feature(s) {', '.join(empty)} have no value in any snapshot of the training "
            "period; drop them from the config's features or fix the feature store")
    return Dataset(usable, spec, X, y, split, cutoff, grace, excluded)
