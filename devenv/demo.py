"""`make demo`: blink end to end on the project-local cluster.

Starts (or reuses) the cluster, migrates it, loads a synthetic population, trains and
installs a model, then scores a handful of users as the application role and prints each
score next to LightGBM's own prediction and the call's latency.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

from devenv import migrate
from devenv.cluster import LocalCluster

DEMO_USERS = 2000
DEMO_SEED = 7
APP_ROLE = "blink_demo_app"


def ensure_app_role(conn) -> None:
    conn.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} LOGIN;
            END IF;
        END $$""")
    conn.execute(f"GRANT blink_app TO {APP_ROLE}")


def load_population(conn, population) -> int:
    """Insert one snapshot per user unless the demo data is already there."""
    from psycopg.types.json import Jsonb

    if conn.execute("SELECT count(*) FROM blink.feature_store_snapshots").fetchone() != (0,):
        return 0
    with conn.cursor() as cur:
        with cur.copy("COPY blink.feature_store_snapshots (user_id, features) FROM STDIN") as copy:
            for user_id, doc in zip(population.user_ids, population.documents(), strict=True):
                copy.write_row([user_id, Jsonb(doc)])
    return len(population.user_ids)


def install_model(conn, population) -> tuple[int, object, bool]:
    """Train the demo model (seeded, so the same data gives the same version) and promote it."""
    import lightgbm

    from trainer import registry, synthetic
    from trainer.artifacts import build_artifact
    from trainer.training import fit_booster

    key = hashlib.sha256(json.dumps([DEMO_USERS, DEMO_SEED, "v1"]).encode()).hexdigest()[:10]
    version = f"demo-{key}"
    model_id = registry.model_id_by_version(conn, version)
    if model_id is not None:
        text = conn.execute("SELECT model_text FROM blink.blink_models WHERE id = %s",
                            [model_id]).fetchone()[0]
        booster = lightgbm.Booster(model_str=text)
        created = False
    else:
        booster = fit_booster(population.features, population.defaulted, synthetic.FEATURES,
                              num_boost_round=150, seed=DEMO_SEED)
        artifact = build_artifact(booster, version, decision_threshold=0.2,
                                  params={"num_boost_round": 150, "seed": DEMO_SEED})
        model_id = registry.insert_model(conn, artifact)
        created = True
    if registry.champion_id(conn) != model_id:
        registry.promote(conn, model_id, "make demo")
    return model_id, booster, created


def score_table(cluster: LocalCluster, population, booster, count: int = 8) -> list[str]:
    import psycopg

    picks = list(range(0, len(population.user_ids), len(population.user_ids) // count))[:count]
    lines = [f"{'user':<12}{'blink_score':>14}{'lightgbm':>14}  {'decision':<9}{'band':<5}"
             f"{'latency':>10}"]
    with psycopg.connect(cluster.dsn(user=APP_ROLE), autocommit=True) as app:
        app.execute("SELECT blink_score(%s)", [population.user_ids[0]])  # load the model once
        for i in picks:
            uid = population.user_ids[i]
            start = time.perf_counter()
            (probability,) = app.execute("SELECT blink_score(%s)", [uid]).fetchone() or (None,)
            latency_ms = (time.perf_counter() - start) * 1000
            decision, band = app.execute(
                "SELECT decision, risk_band FROM blink_decide(%s)", [uid]).fetchone() or ("", "")
            expected = booster.predict(population.features[i : i + 1], num_threads=1)[0]
            lines.append(f"{uid:<12}{probability:>14.6f}{expected:>14.6f}  {decision:<9}"
                         f"{band:<5}{latency_ms:>8.2f}ms")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--dsn", action="store_true", help="print the cluster's DSN and exit")
    parser.add_argument("--stop", action="store_true", help="stop the cluster and exit")
    args = parser.parse_args(argv)
    cluster = LocalCluster()

    if args.dsn or args.stop:
        if not (cluster.root / "port").exists():
            print("blink: no demo cluster yet; run `make demo` first", file=sys.stderr)
            return 1
        if args.dsn:
            print(cluster.dsn())
        elif cluster.stop():
            print("blink: demo cluster stopped")
        return 0

    import psycopg

    from trainer import synthetic

    print(f"blink: starting the project-local cluster in {cluster.root}")
    cluster.start()
    migrate.upgrade(cluster.dsn())
    population = synthetic.generate(DEMO_USERS, seed=DEMO_SEED)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        ensure_app_role(conn)
        loaded = load_population(conn, population)
        print(f"blink: {loaded or 'no new'} feature snapshots loaded")
        model_id, booster, created = install_model(conn, population)
        print(f"blink: champion is model {model_id} ({'trained now' if created else 'reused'})")
    print()
    print("\n".join(score_table(cluster, population, booster)))
    print()
    print(f"Try it:  psql \"{cluster.dsn()}\" -c \"SELECT blink_score('user-42')\"")
    print("          (make psql opens a shell; make stop stops the cluster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
