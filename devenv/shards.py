"""A sharded blink on this machine, in one command (`make shards`, docs/scale-out.md).

The demo cluster's ``blink`` database (``make demo``) is the model home; two more local
clusters are the shards ``s1`` and ``s2`` (each with its own pg_cron); a ``blink_router``
database in the demo cluster is the router. `blink shards setup` does the wiring; this
script also copies the demo's users to the shard owning each (ids kept), so the router
answers for them. ``--stop`` stops the shard clusters.
"""

from __future__ import annotations

import argparse
import sys

import psycopg

from devenv import migrate
from devenv.cluster import LocalCluster, with_database
from devenv.paths import state_dir
from trainer import sharding

SHARDS = ("s1", "s2")
ROUTER_DB = "blink_router"


def shard_clusters() -> dict[str, LocalCluster]:
    return {name: LocalCluster(state_dir() / "shards" / name) for name in SHARDS}


def copy_users(home_url: str, shard_url: str, router_url: str, shard: str) -> int:
    """Copy the snapshots and outcomes of the home's users that the router maps to ``shard``."""
    with psycopg.connect(router_url) as router:
        parts = [p for (p,) in router.execute(
            "SELECT partition FROM blink_router.partitions WHERE shard = %s", [shard])]
    with psycopg.connect(home_url) as src, psycopg.connect(shard_url) as dst:
        copy_rows(src, dst, "hashtext(user_id) & 15 = ANY(%s)", [parts])
        users = dst.execute("SELECT count(DISTINCT user_id) FROM blink.feature_store_snapshots")
        return int(users.fetchone()[0])  # type: ignore[index]


def copy_rows(src: psycopg.Connection, dst: psycopg.Connection, where: str,
              params: list) -> None:
    """Replace ``dst``'s snapshots and outcomes by ``src``'s rows matching ``where``, ids kept."""
    snaps = src.execute("SELECT id, user_id, snapshot_at, features::text FROM "
                        f"blink.feature_store_snapshots WHERE {where}", params).fetchall()
    outcomes = src.execute("SELECT id, user_id, issued_at, due_at, outcome, observed_at "
                           f"FROM blink.repayment_outcomes WHERE {where}", params).fetchall()
    dst.execute("DELETE FROM blink.feature_store_snapshots")  # a re-run starts afresh
    dst.execute("DELETE FROM blink.repayment_outcomes")
    with dst.cursor() as cur:
        cur.executemany("INSERT INTO blink.feature_store_snapshots (id, user_id, snapshot_at,"
                        " features) OVERRIDING SYSTEM VALUE VALUES (%s, %s, %s, %s::jsonb)",
                        snaps)
        cur.executemany("INSERT INTO blink.repayment_outcomes (id, user_id, issued_at, due_at,"
                        " outcome, observed_at) VALUES (%s, %s, %s, %s, %s, %s)", outcomes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.shards", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stop", action="store_true", help="stop the shard clusters and exit")
    args = parser.parse_args(argv)
    clusters = shard_clusters()
    if args.stop:
        for cluster in clusters.values():
            cluster.stop()
        print("blink: shard clusters stopped")
        return 0
    demo = LocalCluster()
    if not demo.is_running():
        print("blink: the demo cluster is not running; run `make demo` first", file=sys.stderr)
        return 1
    home_url = demo.dsn()
    with psycopg.connect(demo.dsn(database="postgres"), autocommit=True) as conn:
        if conn.execute("SHOW wal_level").fetchone()[0] != "logical":  # type: ignore[index]
            print("blink: the demo cluster runs without wal_level = logical; restart it: "
                  "make stop && make demo", file=sys.stderr)
            return 1
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            [ROUTER_DB]).fetchone():
            conn.execute(f"CREATE DATABASE {ROUTER_DB}")
    router_url = with_database(home_url, ROUTER_DB)
    shards = []
    for name, cluster in clusters.items():
        cluster.start()
        migrate.upgrade(cluster.dsn())
        shards.append(sharding.Shard(name, cluster.dsn()))
    mapping = sharding.setup(router_url, home_url, shards)
    for shard in shards:
        users = copy_users(home_url, shard.url, router_url, shard.name)
        parts = [p for p, s in mapping.items() if s == shard.name]
        print(f"blink: shard {shard.name}: partitions {parts}, {users} users")
    print(f"blink: router ready; try\n  psql \"{router_url}\" -c "
          "\"SELECT * FROM blink_score_batch(ARRAY['user-1', 'user-2', 'user-3'])\""
          "\n  psql \"" + router_url + "\" -c \"SELECT * FROM blink.shard_status\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
