"""One rescoring run (blink_rescore_pending): every user whose latest snapshot lacks an audit.

A user is pending for a model when the user's latest snapshot has no risk_score_audits row
by that model: new data since the last score, or a new champion since then. The run

* on a hot standby returns at once, saying so (rescoring writes; it runs on the primary);
* takes a per-database advisory lock for its transaction; a run that cannot get it returns
  at once (pg_cron queues overlapping runs of one job, but not a manual call racing a job);
* with ``workers`` > 1, takes only the users of its worker's share (blink.rescore_worker:
  a hash of the user id), so that many runs, one per worker and each in its own backend,
  rescore on as many cores at once: they share the lock among themselves, and each
  worker's own lock keeps two runs of one worker apart (docs/rescoring.md, "More cores");
* finds them, after a complete run, among the users with a snapshot written since (see
  ``pending``), and reads every user only for a new model or split and once a day;
* scores the champion's pending users first, then each shadow model's, in batches: one SPI
  fetch, one compiled-predict call, one pred_contrib call and one INSERT per batch;
* stops starting new batches after ``max_seconds`` or ``max_users`` per model;
* records a snapshot it cannot score in blink.unscorable_snapshots (quarantine) and goes on
  with the rest: later runs skip it for that model, so one bad row never stops rescoring;
* runs in the caller's single transaction: a run killed halfway rolls back entirely and the
  next run redoes it; the unique (snapshot_id, model_id) key makes any overlap a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyfuncs import audits, model, queries, snapshots
from pyfuncs.errors import InvalidArgumentError

MAX_BATCH = 100_000
# Each worker is a backend (a core, a connection) busy for up to max_seconds per tick: far
# beyond any core count blink runs on, so a typo cannot open thousands of connections.
MAX_WORKERS = 64


@dataclass(frozen=True)
class Limits:
    """Bounds of one run."""

    max_users: int = 200_000  # per model
    max_seconds: float = 240.0  # no new batch starts after this; a batch may finish past it
    batch_size: int = 500
    worker: int = 0  # this run's share of the users: 0 .. workers - 1
    workers: int = 1  # shares the users are split into; 1: every user

    @classmethod
    def checked(cls, max_users: Any, max_seconds: Any, batch_size: Any, worker: Any = 0,
                workers: Any = 1) -> Limits:
        if max_users is None or int(max_users) < 1:
            raise InvalidArgumentError(f"max_users must be a positive integer, got {max_users!r}")
        if max_seconds is None or not float(max_seconds) > 0:
            raise InvalidArgumentError(f"max_seconds must be positive, got {max_seconds!r}")
        if batch_size is None or not 1 <= int(batch_size) <= MAX_BATCH:
            raise InvalidArgumentError(
                f"batch_size must be between 1 and {MAX_BATCH}, got {batch_size!r}")
        if workers is None or not 1 <= int(workers) <= MAX_WORKERS:
            raise InvalidArgumentError(
                f"workers must be between 1 and {MAX_WORKERS}, got {workers!r}")
        if worker is None or not 0 <= int(worker) < int(workers):
            raise InvalidArgumentError(
                f"worker must be between 0 and workers - 1 ({int(workers) - 1}), got {worker!r}")
        return cls(int(max_users), float(max_seconds), int(batch_size), int(worker),
                   int(workers))


# A share reads every user at least this often, whatever its cursor says: the one way to
# see a change that writes no snapshot of its user (a row moved away to another user, so
# an older one is the user's latest again), and a backstop for anything else the triggers
# of migration 0014 miss (a deleted latest snapshot marks the new latest written).
FULL_SCAN_EVERY = "24 hours"


@dataclass(frozen=True)
class Pending:
    """A model's pending snapshot ids for one run, and where the next run may start."""

    model_id: int
    limits: Limits
    ids: list[int]
    horizon: str  # xid8: every snapshot written before it was in this answer's view
    every_user: bool  # found by reading every user of the share, not only the written ones

    def advance(self, plpy: Any, GD: dict) -> None:
        """Record that a run did all of it: the next run reads only what was written since."""
        queries.run(plpy, GD, "advance_rescore_cursor", self.model_id, self.limits.workers,
                    self.limits.worker, self.horizon, self.every_user)


def pending(plpy: Any, GD: dict, model_id: int, limits: Limits) -> Pending:
    """Model ``model_id``'s pending snapshots in ``limits``' share, oldest first.

    After a complete run, a share's next run looks only at the users with a snapshot
    written since (blink.rescore_cursors: the oldest transaction still running when that
    run looked, so a snapshot committed late is never skipped); a tick with little new data
    costs little, however many users there are. With no cursor yet (a new model, a new
    split, a first run), a last full scan FULL_SCAN_EVERY ago, or a cursor of another
    server's transactions (a database restored from a dump), it reads every user.
    """
    cursor = queries.one(plpy, GD, "rescore_cursor", model_id, limits.workers, limits.worker,
                         FULL_SCAN_EVERY)
    every_user = cursor is None or not (cursor["swept_recently"] and cursor["here"])
    args = [model_id, limits.max_users, limits.workers, limits.worker]
    row = (queries.one(plpy, GD, "pending_snapshots", *args) if every_user else
           queries.one(plpy, GD, "pending_snapshots_written_since", *args,
                       cursor["written_before"]))  # type: ignore[index]
    assert row is not None  # an aggregate: always one row
    return Pending(model_id, limits, list(row["ids"]), row["horizon"], every_user)


def rescore_pending(plpy: Any, GD: dict, limits: Limits,
                    clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Run once; returns a summary (what was scored, whether everything pending was done).

    Parameters
    ----------
    plpy, GD
        PL/Python's module and session dictionary.
    limits : Limits
    clock : callable
        Seconds, monotonic (a parameter so tests can drive time).
    """
    start = clock()
    summary: dict[str, Any] = {
        "ran": False, "champion_id": None, "scored": 0, "shadow_scored": {},
        "invalid_snapshots": 0, "quarantined": 0, "batches": 0, "complete": False,
        "seconds": 0.0, "worker": limits.worker, "workers": limits.workers, "full_scans": [],
    }
    lock = queries.one(plpy, GD, "rescore_lock", limits.workers, limits.worker)
    if lock and lock["standby"]:
        summary["reason"] = ("this server is a standby (read-only): rescoring runs on the "
                             "primary, and its audits replicate here")
        return summary
    if not (lock and lock["locked"]):
        summary["reason"] = (
            "another blink_rescore_pending() run is in progress in this database"
            if limits.workers == 1 else
            f"another run of worker {limits.worker} of {limits.workers}, or a run of every "
            "user (workers = 1), is in progress in this database")
        return summary
    champion = queries.one(plpy, GD, "champion")
    if champion is None:
        summary.update(ran=True, complete=True, reason="no champion model: nothing to score")
        return summary
    champion_id = int(champion["model_id"])
    summary.update(ran=True, champion_id=champion_id)
    shadows = [int(r["model_id"]) for r in queries.run(plpy, GD, "shadow_models")
               if int(r["model_id"]) != champion_id]
    table = audits.reason_table(plpy, GD)
    invalid: list[snapshots.Unscorable] = []
    complete = True
    for model_id, source in ([(champion_id, audits.RESCORE)]
                             + [(m, audits.SHADOW) for m in shadows]):
        if clock() - start >= limits.max_seconds:
            complete = False
            break
        scorer = model.loaded(plpy, GD, model_id)
        found = pending(plpy, GD, model_id, limits)
        if found.every_user:
            summary["full_scans"].append(model_id)
        done = len(found.ids) < limits.max_users  # else there may be more than it may take
        written = 0
        for first in range(0, len(found.ids), limits.batch_size):
            if clock() - start >= limits.max_seconds:
                done = False
                break
            batch = snapshots.by_id(plpy, GD, found.ids[first:first + limits.batch_size],
                                    scorer)
            invalid.extend(batch.invalid)
            summary["quarantined"] += audits.quarantine(plpy, GD, model_id, batch.invalid)
            written += audits.audit_batch(plpy, GD, scorer, batch, table, source)
            summary["batches"] += 1
        if done:
            found.advance(plpy, GD)
        complete = complete and done
        if source == audits.RESCORE:
            summary["scored"] = written
        else:
            summary["shadow_scored"][str(model_id)] = written
    audits.warn_invalid(plpy, invalid)
    summary.update(invalid_snapshots=len(invalid), complete=complete,
                   seconds=round(clock() - start, 3))
    return summary
