"""Sharding by user with PL/Proxy: a router and two shards in separate clusters (so one can
be stopped), models from one model home by logical replication. The model home here also
holds every user's data: it is the single-server install the router is compared with."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from devenv import migrate
from devenv.cluster import throwaway_cluster
from devenv.shards import copy_rows
from tests.fix_db import APP_USER, TEMPLATE, Database, create_database, drop_database, install
from tests.fix_trainer import CUTOFF, load, small_history
from trainer import sharding
from trainer.dataset import fetch_rows, fetch_rows_from_shards

USERS = 160


@dataclass
class ShardSet:
    home: Database  # the model home, with every user's data (the single-server reference)
    router: Database
    shards: dict[str, str]  # name -> superuser URL
    owner: dict[str, str]  # user_id -> shard name
    clusters: dict[str, object]
    users: list[str]



def _copy_users(home: Database, shard_url: str, users: list[str]) -> None:
    """The users' snapshots and outcomes, ids kept (the same data as the home)."""
    with home.connect() as src, psycopg.connect(shard_url, autocommit=True) as dst:
        copy_rows(src, dst, "user_id = ANY(%s)", [users])


@pytest.fixture(scope="module")
def shardset(cluster, template_db, model_a) -> Iterator[ShardSet]:
    home = create_database(cluster, TEMPLATE)
    router = create_database(cluster)
    history = small_history(users=USERS)
    with home.connect() as conn:
        load(conn, history)
        install(conn, model_a.artifact)
        users = [u for (u,) in conn.execute(
            "SELECT DISTINCT user_id FROM blink.feature_store_snapshots ORDER BY 1")]
    clusters = {name: throwaway_cluster() for name in ("s1", "s2")}
    try:
        shards = {}
        for name, server in clusters.items():
            url = server.url()  # type: ignore[attr-defined]
            migrate.upgrade(url)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"CREATE ROLE {APP_USER} LOGIN IN ROLE blink_app")
            shards[name] = url
        mapping = sharding.setup(router.dsn(), home.dsn(),
                                 [sharding.Shard(n, u) for n, u in shards.items()])
        with router.connect() as conn:
            owner = {u: mapping[conn.execute("SELECT blink_router.partition_of(%s)",
                                             [u]).fetchone()[0]] for u in users}
        for name, url in shards.items():
            _copy_users(home, url, [u for u in users if owner[u] == name])
        yield ShardSet(home, router, shards, owner, clusters, users)
    finally:
        for url in shards.values():
            try:  # drop the subscription (and so its slot at the home) while both run
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("DROP SUBSCRIPTION IF EXISTS blink_models")
            except psycopg.Error:
                pass
        for server in clusters.values():
            server.stop()  # type: ignore[attr-defined]
        with psycopg.connect(cluster, autocommit=True) as conn:  # a stopped shard's slot
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE database = %s AND NOT active", [home.name])
        drop_database(router)
        drop_database(home)


def test_the_partition_map_spreads_users_over_both_shards(shardset):
    with shardset.router.connect() as conn:
        rows = conn.execute("SELECT partition, shard FROM blink_router.partitions ORDER BY 1")
        assert [r[1] for r in rows] == ["s1", "s2"] * 8
    counts = {n: sum(1 for s in shardset.owner.values() if s == n) for n in shardset.shards}
    assert min(counts.values()) > USERS // 4, counts


def test_every_api_function_answers_through_the_router_as_on_one_server(shardset):
    users = shardset.users[:40] + ["nobody"]
    queries = {
        "score": "SELECT blink_score(%s)",
        "decide": "SELECT * FROM blink_decide(%s)",
        "explain": "SELECT rank, reason_code, reason_text, feature_name, feature_value, "
                   "shap_value, probability_default, decision, model_id, snapshot_id "
                   "FROM blink_explain(%s)",
    }
    got = {}
    for where, db in (("home", shardset.home), ("router", shardset.router)):
        with db.connect(APP_USER) as app:
            got[where] = {q: [app.execute(sql, [u]).fetchall() for u in users]
                          for q, sql in queries.items()}
            got[where]["features"] = app.execute(
                "SELECT blink_score_features('{\"metric_overdraft_count90\": 2}')").fetchall()
            got[where]["champion"] = app.execute("SELECT * FROM blink_champion()").fetchall()
    for key in ("score", "decide", "explain", "features", "champion"):
        assert got["router"][key] == got["home"][key], key
    assert got["router"]["score"][0][0][0] is not None and got["router"]["score"][-1] == [(None,)]
    # the explanation was computed on the shard and stored there, as one server would
    with psycopg.connect(shardset.shards[shardset.owner[users[0]]], autocommit=True) as shard:
        assert shard.execute("SELECT count(*) FROM blink.risk_score_audits WHERE user_id = %s",
                             [users[0]]).fetchone()[0] == 1


def test_a_batch_across_shards_comes_back_in_the_callers_order(shardset):
    rng = random.Random(5)
    ids: list[str | None] = shardset.users[:60] + ["nobody", None] + shardset.users[:5]
    rng.shuffle(ids)
    sql = "SELECT * FROM blink_score_batch(%s)"
    with shardset.home.connect(APP_USER) as home, shardset.router.connect(APP_USER) as router:
        expected = home.execute(sql, [ids]).fetchall()
        got = router.execute(sql, [ids]).fetchall()
        assert router.execute(sql, [[]]).fetchall() == home.execute(sql, [[]]).fetchall()
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            router.execute(sql, [["u"] * 100_001])
    assert [r[0] for r in got] == ids
    assert {shardset.owner[u] for u in ids if u in shardset.owner} == {"s1", "s2"}
    assert got == expected


def test_the_router_connects_to_shards_as_the_callers_role(shardset):
    with shardset.router.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT * FROM blink_router.shard_state('dbname=x')")
        assert app.execute("SELECT count(*) FROM blink.shard_status").fetchone()[0] == 2


def test_shards_refuse_local_model_writes(shardset):
    with psycopg.connect(shardset.shards["s1"], autocommit=True) as shard:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="model home"):
            shard.execute("INSERT INTO blink.blink_deployments (model_id, action, reason) "
                          "SELECT model_id, 'promote', 'local' FROM blink.champion()")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            shard.execute("UPDATE blink.reason_codes SET reason_text = 'x' WHERE code = 'R00'")


def test_rescoring_on_each_shard_audits_only_its_own_users(shardset):
    for name, url in shardset.shards.items():
        mine = {u for u, s in shardset.owner.items() if s == name}
        with psycopg.connect(url, autocommit=True) as shard:
            summary = shard.execute("SELECT blink_rescore_pending()").fetchone()[0]
            audited = {u for (u,) in shard.execute(
                "SELECT DISTINCT user_id FROM blink.risk_score_audits")}
            jobs = shard.execute("SELECT count(*) FROM blink_schedule()").fetchone()[0]
        assert summary["ran"] is True, summary
        assert audited == mine, (name, summary)
        assert jobs >= 1  # each shard's own pg_cron takes the jobs


def test_training_data_from_all_shards_equals_the_single_server_extract(shardset):
    with shardset.home.connect() as home:
        expected = fetch_rows(home, CUTOFF)
    got = fetch_rows_from_shards(list(shardset.shards.values())[::-1], CUTOFF)
    assert len(got) > 100 and got == expected


def test_training_from_the_shards_gives_the_model_one_server_gives(shardset, tmp_path):
    from tests.fix_trainer import fast_config
    from trainer.pipeline import RunOptions, run

    config = fast_config(min_rows=50, min_positives=3)
    results = []
    for data_from in ((), tuple(shardset.shards.values())):
        with shardset.home.connect() as home:  # the model home: where the model would go
            results.append(run(home, config, RunOptions(
                cutoff=CUTOFF, dry_run=True, output_dir=tmp_path, data_from=data_from)))
    single, sharded = results
    assert sharded.metrics["test"] == single.metrics["test"]
    assert sharded.artifact.model_text == single.artifact.model_text


def test_setting_up_again_changes_nothing_and_status_reports_each_shard(shardset, capsys):
    from trainer import cli

    with shardset.router.connect() as conn:
        before = conn.execute("SELECT version FROM blink_router.config_version").fetchone()
    mapping = sharding.setup(shardset.router.dsn(), shardset.home.dsn(),
                             [sharding.Shard(n, u) for n, u in shardset.shards.items()])
    with shardset.router.connect() as conn:
        after = conn.execute("SELECT version FROM blink_router.config_version").fetchone()
    assert after == before and list(mapping.values()) == ["s1", "s2"] * 8
    assert cli.main(["shards", "status", "--router", shardset.router.dsn()]) == 0
    out = capsys.readouterr().out
    assert "s1: partitions [0, 2, 4" in out and "s2: partitions [1, 3, 5" in out
    assert "LAGGING" not in out and "subscription running" in out


def test_a_promotion_at_the_home_reaches_both_shards_and_lag_shows(shardset, model_b):
    s2 = shardset.shards["s2"]
    with psycopg.connect(s2, autocommit=True) as shard:
        shard.execute("ALTER SUBSCRIPTION blink_models DISABLE")
    with shardset.home.connect() as home:
        new_id = install(home, model_b.artifact)
    sharding.wait_for_models(shardset.shards["s1"], shardset.home.dsn())
    with shardset.router.connect() as router:
        status = {r[0]: r for r in router.execute(
            "SELECT shard, lagging, champion_model_id, home_champion_model_id, reachable "
            "FROM blink.shard_status")}
    assert status["s1"][1:] == (False, new_id, new_id, True)
    assert status["s2"][1] is True and status["s2"][2] != new_id
    with psycopg.connect(s2, autocommit=True) as shard:
        shard.execute("ALTER SUBSCRIPTION blink_models ENABLE")
    sharding.wait_for_models(s2, shardset.home.dsn())
    with shardset.router.connect() as router:
        lagging = router.execute("SELECT bool_or(lagging) FROM blink.shard_status").fetchone()
    assert lagging == (False,)
    users = shardset.users[:30]
    with shardset.home.connect(APP_USER) as home, shardset.router.connect(APP_USER) as router:
        expected = [home.execute("SELECT model_id, probability_default FROM blink_decide(%s)",
                                 [u]).fetchone() for u in users]
        got = [router.execute("SELECT model_id, probability_default FROM blink_decide(%s)",
                              [u]).fetchone() for u in users]
    assert got == expected and {r[0] for r in got} == {new_id}
    # blink_score folds the champion into its plan: the trigger that redefines it must fire
    # for deployments arriving by replication, too.
    with shardset.router.connect(APP_USER) as router:
        scored = [router.execute("SELECT blink_score(%s)", [u]).fetchone()[0] for u in users]
    assert scored == [p for _, p in expected]


def test_monitoring_on_a_shard_leaves_model_changes_to_the_home(shardset):
    # After the promotion above the previous champion is on probation (a shadow row the home
    # published). A shard's run past the probation's end reports, never writes, the change.
    s1 = shardset.shards["s1"]
    with psycopg.connect(s1, autocommit=True) as shard:
        shard.execute("UPDATE blink.monitoring_policy SET mode = 'auto'")  # an operator's slip
        shadows = shard.execute("SELECT model_id, until FROM blink.blink_shadow_models"
                                ).fetchall()
        assert any(until is not None for _, until in shadows)
        summary = shard.execute("SELECT blink_monitor_run(now() + interval '90 days')"
                                ).fetchone()[0]
        assert summary["ran"], summary
        assert all(a["kind"] != "end_probation" for a in summary["actions"])
        assert all(a["withheld"] for a in summary["actions"]
                   if a["kind"] in ("promote", "rollback"))
        assert shard.execute("SELECT model_id, until FROM blink.blink_shadow_models"
                             ).fetchall() == shadows
        shard.execute("UPDATE blink.monitoring_policy SET mode = 'alert'")


def test_a_stopped_shard_fails_its_users_clearly_and_no_one_else(shardset):
    shardset.clusters["s2"].stop()  # type: ignore[attr-defined]
    on_s1 = [u for u in shardset.users if shardset.owner[u] == "s1"][:5]
    on_s2 = [u for u in shardset.users if shardset.owner[u] == "s2"][:5]
    with shardset.router.connect(APP_USER) as router:
        assert all(router.execute("SELECT blink_score(%s)", [u]).fetchone()[0] is not None
                   for u in on_s1)
        assert router.execute("SELECT count(*) FROM blink_score_batch(%s)",
                              [on_s1]).fetchone()[0] == 5
        for sql in ("SELECT blink_score(%s)", "SELECT * FROM blink_decide(%s)",
                    "SELECT * FROM blink_explain(%s)"):
            with pytest.raises(psycopg.OperationalError, match=r"shard s2 \(partition \d+ of 16"):
                router.execute(sql, [on_s2[0]])
        with pytest.raises(psycopg.OperationalError, match="a shard is unreachable"):
            router.execute("SELECT * FROM blink_score_batch(%s)", [on_s1 + on_s2])
        status = {r[0]: r[1:] for r in router.execute(
            "SELECT shard, reachable, error IS NOT NULL FROM blink.shard_status")}
    assert status == {"s1": (True, False), "s2": (False, True)}
