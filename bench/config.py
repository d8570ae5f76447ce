"""Sizes and durations of a benchmark run: the full run and the quick one (``--quick``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class BenchConfig:
    """Everything that sets how big and how long a run is.

    Every loop in the benchmark is bounded by these numbers (a count and a duration), so a
    run cannot spin forever on a slow or busy machine.
    """

    quick: bool
    n_users: int  # synthetic users loaded into the feature store (one snapshot each)
    train_users: int  # of which the model is trained on the first ``train_users``
    trees: int
    leaves: int
    seed: int = 20261121
    concurrency: tuple[int, ...] = (1, 4, 16)
    latency_seconds: float = 10.0  # per (target, concurrency) point, over all its rounds
    latency_rounds: int = 5  # each point runs in this many rounds, targets interleaved
    latency_max_requests: int = 200_000  # per round, across clients (Python clients' bound)
    warmup_requests: int = 3  # per client connection, discarded (first call loads the model)
    # each round's one-client pair (bench.latency.one_client_pair): about 3 µs of sampling
    # error on the added latency in 2 s, ~2 µs in 6 s (docs/benchmarks.md, "Session 16"),
    # against an allowance of 2.6-3.6 µs that every round must keep: 24 s since session 21
    pair_round_seconds: int = 24
    # users scored in one statement; at least n_users: the batch's reference reads the
    # whole snapshots table (bench.throughput.TABLE_READ), so the batch takes every user
    batch_users: int = 100_000
    explain_users: int = 2_000
    # users blink_rescore_pending rescores: half in one run (the target's figure), the
    # other half split among rescore_workers runs at once, one backend each (a separate
    # figure, never in the per-core target)
    rescore_users: int = 100_000
    rescore_workers: int = 2
    rescore_seconds: float = 180.0  # each run's max_seconds: no batch starts after this
    cold_start_repeats: int = 10
    reload_repeats: int = 5
    timeout_seconds: float = 300.0  # hard bound on any one subprocess (pgbench, uvicorn start)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        per_round = self.latency_seconds / max(self.latency_rounds, 1)
        if self.latency_rounds < 1 or per_round < 1 or per_round != int(per_round):
            raise ValueError("latency_seconds / latency_rounds must be a whole number of "
                             "seconds, at least 1 (pgbench's --time)")
        if self.batch_users < self.n_users:
            raise ValueError("batch_users must be at least n_users: the batch's reference "
                             "reads the whole snapshots table, one snapshot per user")
        if self.pair_round_seconds < 1:
            raise ValueError("pair_round_seconds must be at least 1 (pgbench's --time)")

    @property
    def latency_round_seconds(self) -> int:
        """How long each target runs in one round (pgbench times in whole seconds)."""
        return int(self.latency_seconds / self.latency_rounds)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["concurrency"] = list(self.concurrency)
        values["latency_round_seconds"] = self.latency_round_seconds
        return values


def full() -> BenchConfig:
    """The reference run: DESIGN.md's model shape (400 trees x 31 leaves), 100,000 users."""
    return BenchConfig(quick=False, n_users=100_000, train_users=30_000, trees=400, leaves=31)


def quick() -> BenchConfig:
    """A smoke run in well under a minute: tiny model, few users, two one-second rounds per
    latency point."""
    return BenchConfig(
        quick=True,
        n_users=2_000,
        train_users=2_000,
        trees=20,
        leaves=15,
        latency_seconds=2.0,
        latency_rounds=2,
        latency_max_requests=30_000,  # above a one-second round's requests: time bounds it
        warmup_requests=1,
        pair_round_seconds=1,
        batch_users=2_000,
        explain_users=100,
        rescore_users=2_400,  # 1,200 in one run, the other 699 pending split between two
        rescore_seconds=30.0,
        cold_start_repeats=2,
        reload_repeats=2,
        timeout_seconds=60.0,
    )
