"""`python -m bench.scaleout [--quick]` (make bench-scaleout): what the sharding router costs.

Three throwaway clusters: one holds the model home and the router database, two are shards.
Every shard holds every user here (only the partition map decides who answers), so the
same users score with one shard or two. Reported, as ratios to a reference measured in the
same run (absolute figures only beside them):

* the router hop: p50 of ``blink_score`` through the router / p50 on the shard directly,
  one client (both prepared statements over one connection);
* throughput through the router with one shard and with two, as a ratio to calling one
  shard directly with the same clients. All three clusters share this machine's cores: on
  two cores a second shard cannot add capacity, so no speed-up is expected here; the
  figure shows what the router's own work costs under load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import clients
from bench.environment import USER_PREFIX, load_snapshots
from bench.stats import Samples, pool_rounds, ratio

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"users": 2_000, "trees": 20, "leaves": 15, "seconds": 1.0, "rounds": 2,
                "clients": 2}
    return {"users": 20_000, "trees": 400, "leaves": 31, "seconds": 3.0, "rounds": 4,
            "clients": 4}


def run(quick: bool, log) -> dict[str, Any]:
    from devenv import migrate
    from devenv.cluster import throwaway_cluster, with_database
    from trainer import registry, sharding, synthetic
    from trainer.artifacts import build_artifact
    from trainer.training import fit_booster

    size = _sizes(quick)
    log("starting three throwaway clusters (home + router, shard s1, shard s2)")
    servers = {name: throwaway_cluster() for name in ("home", "s1", "s2")}
    try:
        base = servers["home"].url()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("CREATE DATABASE blink_home")
            conn.execute("CREATE DATABASE blink_router")
        home = with_database(base, "blink_home")
        router = with_database(base, "blink_router")
        shards = {n: servers[n].url() for n in ("s1", "s2")}
        population = synthetic.generate(size["users"], seed=7, prefix=USER_PREFIX)
        log(f"training a {size['trees']} x {size['leaves']} model")
        booster = fit_booster(population.features, population.defaulted, synthetic.FEATURES,
                              num_boost_round=size["trees"], seed=7,
                              params={"num_leaves": size["leaves"], "min_data_in_leaf": 20})
        artifact = build_artifact(booster, "scaleout-bench", decision_threshold=0.2)
        for url in (home, *shards.values()):
            migrate.upgrade(url)
        with psycopg.connect(home, autocommit=True) as conn:
            registry.promote(conn, registry.insert_model(conn, artifact), "bench")
        for url in shards.values():
            with psycopg.connect(url, autocommit=True) as conn:
                load_snapshots(conn, population)
        log("setting up the router with shard s1 only, then subscribing s2")
        sharding.setup(router, home, [sharding.Shard("s1", shards["s1"])])
        sharding.setup_shard(sharding.Shard("s2", shards["s2"]), home)
        sharding.setup_router(router, home, [sharding.Shard("s2", shards["s2"])])
        sharding.wait_for_models(shards["s2"], home)
        users = list(population.user_ids)

        def measure(url: str, n_clients: int) -> Samples:
            # One process per client, as make bench's (bench.clients: threads queue for
            # the GIL and measure the client); threads until session 21.
            return clients.run(lambda: clients.SqlSession(url), clients=n_clients,
                               seconds=size["seconds"], max_requests=1_000_000, warmup=3,
                               user_ids=users, seed=11, processes=True)

        def rounds(targets: dict[str, str], n_clients: int) -> dict[str, dict[str, Any]]:
            got: dict[str, list[Samples]] = {name: [] for name in targets}
            for i in range(size["rounds"]):  # interleaved, so drift hits every target alike
                order = list(targets) if i % 2 == 0 else list(targets)[::-1]
                for name in order:
                    got[name].append(measure(targets[name], n_clients))
            return {name: pool_rounds(samples) for name, samples in got.items()}

        log("one client: the router hop against the shard directly")
        one = rounds({"direct": shards["s1"], "router_1_shard": router}, 1)
        log(f"{size['clients']} clients: router with one shard, then with two")
        many_one = rounds({"direct": shards["s1"], "router_1_shard": router}, size["clients"])
        for p in range(1, sharding.PARTITIONS, 2):  # odd partitions to s2
            sharding.move_partition(router, p, "s2")
        many_two = rounds({"direct": shards["s1"], "router_2_shards": router}, size["clients"])
    finally:
        for server in servers.values():
            server.stop()

    def fig(point: dict[str, Any], key: str) -> float:
        return point[key]

    return {
        "sizes": size,
        "router_hop_p50_ratio": ratio(fig(one["router_1_shard"], "p50_ms"),
                                      fig(one["direct"], "p50_ms")),
        "p50_ms": {"direct": fig(one["direct"], "p50_ms"),
                   "router": fig(one["router_1_shard"], "p50_ms")},
        "throughput_ratio_1_shard": ratio(fig(many_one["router_1_shard"], "requests_per_s"),
                                          fig(many_one["direct"], "requests_per_s")),
        "throughput_ratio_2_shards": ratio(fig(many_two["router_2_shards"], "requests_per_s"),
                                           fig(many_two["direct"], "requests_per_s")),
        "requests_per_s": {
            "direct_1": fig(many_one["direct"], "requests_per_s"),
            "router_1_shard": fig(many_one["router_1_shard"], "requests_per_s"),
            "direct_2": fig(many_two["direct"], "requests_per_s"),
            "router_2_shards": fig(many_two["router_2_shards"], "requests_per_s"),
        },
        "points": {"one_client": one, "clients_1_shard": many_one, "clients_2_shards": many_two},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    result = run(args.quick, log)
    n = result["sizes"]["clients"]
    print(f"router hop, p50 one client: {result['router_hop_p50_ratio']}x the shard directly "
          f"({result['p50_ms']['router']} ms vs {result['p50_ms']['direct']} ms)")
    print(f"throughput, {n} clients, as a ratio to one shard directly: router with one shard "
          f"{result['throughput_ratio_1_shard']}x, with two shards "
          f"{result['throughput_ratio_2_shards']}x (all on this machine's cores: no speed-up "
          "is possible here)")
    print("requests/s:", json.dumps(result["requests_per_s"]))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"scaleout-{stamp}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
