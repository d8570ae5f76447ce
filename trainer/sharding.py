"""Sharding by user: one router, one model home, N shards (docs/scale-out.md).

``setup`` writes everything from a list of URLs, and is safe to run again (to add a shard,
or after a restart): the model home publishes the model tables (db/sharding/home.sql);
each shard refuses local writes to them and subscribes (db/sharding/shard.sql); the router
gets the PL/Proxy API and the partition map (db/sharding/router.sql). Partitions not yet
mapped go round-robin to the shards given; mapped ones stay where they are, so adding a
shard moves nothing until ``move_partition`` says so.

The URLs are used twice: by this command, and by the servers themselves (the router's
PL/Proxy connects to the shards and the home, each shard's subscription connects to the
home), so they must be valid from every server and carry no password (use ~/.pgpass).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.errors import TrainerError

SQL_DIR = Path(__file__).resolve().parent.parent / "db" / "sharding"
PARTITIONS = 16  # fixed: a power of two (PL/Proxy masks the hash); db/sharding/router.sql
PUBLICATION = SUBSCRIPTION = "blink_models"
# What the model home publishes, in the order a fresh shard must receive them.
MODEL_TABLES = ("blink_models", "vetted_models", "blink_deployments",
                "blink_promotion_reviews", "blink_shadow_models", "reason_codes")


class ShardingError(TrainerError):
    """A set-up step that cannot go on, with what to do about it."""


@dataclass(frozen=True)
class Shard:
    name: str
    url: str


def parse_shard(text: str) -> Shard:
    """``NAME=URL`` from the command line."""
    name, sep, url = text.partition("=")
    if not sep or not name or not url:
        raise ShardingError(f"--shard wants NAME=URL, got {text!r}")
    if not re.fullmatch(r"[a-z0-9_-]{1,40}", name):
        raise ShardingError(f"shard name {name!r}: use 1-40 of a-z, 0-9, _ and -")
    return Shard(name, url)


def conninfo(url: str) -> str:
    """libpq key=value form: PL/Proxy appends ``user=`` to it, which a URI would not take."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {k: v for k, v in conninfo_to_dict(url).items() if v is not None}
    return make_conninfo(**params)  # type: ignore[arg-type]


def _connect(url: str) -> Any:
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True, application_name="blink-shards")
    except psycopg.Error as exc:
        raise ShardingError(f"cannot connect to {url}: {str(exc).strip()}") from None


def _apply(conn: Any, name: str) -> None:
    conn.execute((SQL_DIR / name).read_text())


def _require_blink(conn: Any, role: str, url: str) -> None:
    if conn.execute("SELECT to_regclass('blink.blink_models')").fetchone()[0] is None:
        raise ShardingError(f"{role} {url} has no blink install: run `alembic upgrade head` "
                            "there first (README, 'Installing on an existing server')")


def setup_home(url: str) -> None:
    with _connect(url) as conn:
        _require_blink(conn, "the model home", url)
        if conn.execute("SHOW wal_level").fetchone()[0] != "logical":
            raise ShardingError("the model home needs wal_level = logical (postgresql.conf, "
                                "then a restart) to publish models to the shards")
        _apply(conn, "home.sql")


def setup_shard(shard: Shard, home_url: str) -> None:
    """Guard and subscribe one shard (a fresh install: no models of its own)."""
    with _connect(shard.url) as conn:
        _require_blink(conn, f"shard {shard.name}", shard.url)
        subscribed = conn.execute("SELECT 1 FROM pg_subscription WHERE subname = %s",
                                  [SUBSCRIPTION]).fetchone()
        if not subscribed:
            if conn.execute("SELECT count(*) FROM blink.blink_models").fetchone()[0]:
                raise ShardingError(
                    f"shard {shard.name} already holds models of its own; a shard must start "
                    "from a fresh install and receive every model from the model home")
            with conn.transaction():
                # The migration's default reason texts arrive again from the home; skip the
                # keep-default trigger as the apply worker does.
                conn.execute("SET LOCAL session_replication_role = replica")
                conn.execute("TRUNCATE blink.reason_codes")
        _apply(conn, "shard.sql")
        # Automatic promote/rollback writes deployments, which only the home may do.
        conn.execute("UPDATE blink.monitoring_policy SET mode = 'alert' WHERE mode = 'auto'")
        if not subscribed:
            # One replication slot per shard at the home, named after the shard.
            slot = "blink_shard_" + shard.name.replace("-", "_")
            conn.execute(f"CREATE SUBSCRIPTION {SUBSCRIPTION} CONNECTION "
                         f"{_literal(conninfo(home_url))} PUBLICATION {PUBLICATION} "
                         f"WITH (slot_name = {_literal(slot)})")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def setup_router(url: str, home_url: str, shards: Sequence[Shard]) -> dict[int, str]:
    """PL/Proxy API, shards, model home; unmapped partitions round-robin. The map back."""
    with _connect(url) as conn:
        _apply(conn, "router.sql")
        with conn.transaction():
            # Only real changes are written: each write bumps the map's version, which
            # makes every router session reload it.
            for shard in shards:
                _upsert(conn, "blink_router.shards", "name", shard.name, conninfo(shard.url))
            _upsert(conn, "blink_router.model_home", "only_row", True, conninfo(home_url))
            mapped = {p for (p,) in conn.execute("SELECT partition FROM blink_router.partitions")}
            names = [s.name for s in shards]
            missing = [p for p in range(PARTITIONS) if p not in mapped]
            if missing and not names:
                raise ShardingError("no shard given and the partition map is incomplete")
            for p in missing:
                conn.execute("INSERT INTO blink_router.partitions VALUES (%s, %s)",
                             [p, names[p % len(names)]])
        return partition_map(conn)


def _upsert(conn: Any, table: str, key: str, value: Any, connstr: str) -> None:
    row = conn.execute(f"SELECT connstr FROM {table} WHERE {key} = %s", [value]).fetchone()
    if row is None:
        conn.execute(f"INSERT INTO {table} ({key}, connstr) VALUES (%s, %s)", [value, connstr])
    elif row[0] != connstr:
        conn.execute(f"UPDATE {table} SET connstr = %s WHERE {key} = %s", [connstr, value])


def partition_map(conn: Any) -> dict[int, str]:
    rows = conn.execute("SELECT partition, shard FROM blink_router.partitions ORDER BY 1")
    return {int(p): s for p, s in rows.fetchall()}


def move_partition(router_url: str, partition: int, shard: str) -> None:
    """Point a partition at another shard (its users' rows must be moved first; docs)."""
    with _connect(router_url) as conn:
        done = conn.execute("UPDATE blink_router.partitions SET shard = %s WHERE partition = %s",
                            [shard, partition])
        if done.rowcount != 1:
            raise ShardingError(f"no partition {partition} (they are 0..{PARTITIONS - 1})")


def wait_for_models(shard_url: str, home_url: str, timeout: float = 60.0) -> None:
    """Wait until a shard has every model table copied and the home's champion applied."""
    with _connect(home_url) as home:
        row = home.execute("SELECT model_id FROM blink.champion()").fetchone()
        champion = row[0] if row else None
    deadline = time.monotonic() + timeout
    with _connect(shard_url) as conn:
        while True:
            (ready,) = conn.execute(
                "SELECT count(*) FILTER (WHERE srsubstate = 'r') = %s FROM pg_subscription_rel",
                [len(MODEL_TABLES)]).fetchone()
            row = conn.execute("SELECT model_id FROM blink.champion()").fetchone()
            if ready and (row[0] if row else None) == champion:
                return
            if time.monotonic() > deadline:
                raise ShardingError(f"shard {shard_url} has not caught up with the model home "
                                    f"after {timeout:.0f} s (champion {champion})")
            time.sleep(0.1)


def setup(router_url: str, home_url: str, shards: Sequence[Shard], wait: bool = True
          ) -> dict[int, str]:
    """The whole set-up (one command: ``blink shards setup``); returns the partition map."""
    names = [s.name for s in shards]
    if len(set(names)) != len(names):
        raise ShardingError(f"shard names repeat: {names}")
    setup_home(home_url)
    for shard in shards:
        setup_shard(shard, home_url)
    mapping = setup_router(router_url, home_url, shards)
    if wait:
        for shard in shards:
            wait_for_models(shard.url, home_url)
    return mapping


def status(router_url: str) -> list[dict[str, Any]]:
    with _connect(router_url) as conn:
        cur = conn.execute("SELECT * FROM blink.shard_status")
        columns = [c.name for c in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
