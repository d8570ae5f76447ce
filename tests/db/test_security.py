"""Trust boundaries: each attack or fault of the audit, reproduced, now failing safely.

docs/security.md lists the attacks and names the test that covers each.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import psycopg
import pytest

from pyfuncs.integrity import sha256_hex
from tests.fix_db import APP_USER, TRAINER_USER, insert_snapshots, install
from trainer import registry

CONSTRUCTOR_C = r"""
#include <stdio.h>
__attribute__((constructor)) static void attack(void) {
    FILE *f = fopen("%(marker)s", "w");
    if (f) { fputs("the trainer's code ran in the server\n", f); fclose(f); }
}
int get_num_feature(void) { return %(n)d; }
void predict(void *row, int margin, double *out) { *out += 0.5; }
"""


def constructor_library(marker: Path, num_features: int, workdir: Path) -> bytes:
    """A shared library that writes ``marker`` as soon as anything loads it."""
    source = workdir / "attack.c"
    source.write_text(CONSTRUCTOR_C % {"marker": marker, "n": num_features})
    library = workdir / "attack.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library.read_bytes()


def as_trainer_row(artifact, **changes):
    values = {**artifact.__dict__, **changes}
    if "compiled_lib" in changes:
        values["compiled_lib_sha256"] = sha256_hex(changes["compiled_lib"])
    if "model_text" in changes:
        values["model_text_sha256"] = sha256_hex(changes["model_text"].encode())
    return artifact.__class__(**values)


@pytest.fixture
def shared_dir():
    """A directory the server's OS user can write (it may be another user than ours)."""
    with tempfile.TemporaryDirectory(prefix="blink-security-") as path:
        os.chmod(path, 0o777)
        yield Path(path)


def test_a_trainer_supplied_library_never_runs(db, model_a, shared_dir):
    marker = shared_dir / "pwned"
    evil = constructor_library(marker, len(model_a.artifact.feature_names), shared_dir)
    artifact = as_trainer_row(model_a.artifact, version="evil", compiled_lib=evil)
    population = model_a.population
    with db.connect() as owner:
        insert_snapshots(owner, population.user_ids[:50], population.documents()[:50])
    with db.connect(TRAINER_USER) as trainer:
        model_id = registry.insert_model(trainer, artifact)
        trainer.execute("SELECT blink_shadow_add(%s)", [model_id])  # rescoring path
        trainer.execute("SELECT blink_promote(%s, 'attack')", [model_id])
    with db.connect(APP_USER) as app:
        got = [app.execute("SELECT blink_score(%s)", [u]).fetchone()[0]
               for u in population.user_ids[:50]]
        app.execute("SELECT * FROM blink_explain(%s)", [population.user_ids[0]]).fetchall()
        app.execute("SELECT * FROM blink_score_batch(%s)", [population.user_ids[:50]])
    with db.connect() as owner:
        owner.execute("SELECT blink_rescore_pending()")
        built = owner.execute("SELECT compiled_lib FROM blink.vetted_models WHERE model_id = %s",
                              [model_id]).fetchone()[0]
    assert not marker.exists()
    assert bytes(built) != evil  # the server built its own library from the model text
    assert np.abs(np.array(got) - model_a.predict(population.features[:50])).max() <= 1e-9


def crashing_model_text(model_text: str) -> str:
    """Model text that makes LightGBM abort (a tree claiming far more leaves than it has)."""
    return re.sub(r"num_leaves=\d+", "num_leaves=4000", model_text, count=1)


def test_a_model_text_that_crashes_lightgbm_is_refused_and_the_cluster_stays_up(db, model_a):
    artifact = as_trainer_row(model_a.artifact, version="crash",
                              model_text=crashing_model_text(model_a.artifact.model_text))
    with db.connect() as bystander, db.connect(TRAINER_USER) as trainer:
        model_id = registry.insert_model(trainer, artifact)
        with pytest.raises(psycopg.errors.DataCorrupted,
                           match=r"^blink: model \d+ \(crash\).*(signal 6|refused)"):
            trainer.execute("SELECT blink_promote(%s, 'crash')", [model_id])
        with pytest.raises(psycopg.errors.DataCorrupted):
            trainer.execute("SELECT blink_shadow_add(%s)", [model_id])
        assert bystander.execute("SELECT 1").fetchone() == (1,)  # no backend restart
        assert trainer.execute("SELECT count(*) FROM blink.vetted_models").fetchone() == (0,)


def test_a_model_whose_features_do_not_match_its_text_is_refused(db, model_a):
    names = list(reversed(model_a.artifact.feature_names))
    artifact = as_trainer_row(model_a.artifact, version="swapped", feature_names=names)
    with db.connect(TRAINER_USER) as trainer:
        model_id = registry.insert_model(trainer, artifact)
        with pytest.raises(psycopg.errors.DataCorrupted, match="feature_names"):
            trainer.execute("SELECT blink_promote(%s, 'swap')", [model_id])


def test_bad_values_are_quarantined_and_unused_keys_never_fail_a_score(scored_db, model_a):
    deep = "[" * 3000 + "]" * 3000
    digits = "9" * 5000
    rows = {  # user -> document text
        "huge-used": f'{{"metric_total_balance": {digits}}}',
        "deep-used": f'{{"metric_total_balance": {deep}}}',
        "huge-unused": '{"note": ' + digits + ', "metric_debt_load30": 0.5}',
        "deep-unused": '{"note": ' + deep + ', "metric_debt_load30": 0.5}',
    }
    with scored_db.connect() as owner:
        for user, text in rows.items():
            owner.execute("INSERT INTO blink.feature_store_snapshots (user_id, features) "
                          "VALUES (%s, %s::jsonb)", [user, text])
        summary = owner.execute("SELECT blink_rescore_pending()").fetchone()[0]
        audited = {u for (u,) in owner.execute("SELECT user_id FROM blink.risk_score_audits")}
        quarantined = dict(owner.execute(
            "SELECT user_id, error FROM blink.unscorable_snapshots").fetchall())
    assert summary["quarantined"] == 2 and summary["complete"] is True
    assert set(quarantined) == {"huge-used", "deep-used"}
    assert 'feature "metric_total_balance"' in quarantined["huge-used"]
    assert "must be finite" in quarantined["huge-used"]
    assert "nested" in quarantined["deep-used"]
    assert {"huge-unused", "deep-unused", *model_a.population.user_ids} <= audited
    with scored_db.connect(APP_USER) as app:
        for user in ("huge-unused", "deep-unused"):
            assert 0 <= app.execute("SELECT blink_score(%s)", [user]).fetchone()[0] <= 1
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="metric_total_balance"):
            app.execute("SELECT blink_score('deep-used')")
        assert app.execute("SELECT blink_score_features(%s::jsonb)",
                           ['{"metric_debt_load30": 0.5, "metric_total_balance": 1}']
                           ).fetchone()[0] == pytest.approx(
            model_a.predict(np.array([[np.nan, np.nan, 1, np.nan, 0.5, np.nan, np.nan]]))[0])


def test_errors_read_as_blink_with_a_hint_only_when_there_is_one(scored_db):
    with scored_db.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.InvalidParameterValue) as bad:
            app.execute("""SELECT blink_score_features('{"metric_debt_load30": "x"}')""")
    diag = bad.value.diag
    assert diag.message_primary.startswith('blink: feature "metric_debt_load30"')
    assert diag.message_hint is None and "None" not in str(bad.value)


def test_score_batch_has_a_documented_maximum(scored_db):
    with scored_db.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.InvalidParameterValue,
                           match="^blink: blink_score_batch takes at most 100000 user ids"):
            app.execute("SELECT count(*) FROM blink_score_batch("
                        "array(SELECT 'u' || i FROM generate_series(1, 100001) i))")
        assert app.execute("SELECT count(*) FROM blink_score_batch("
                           "array(SELECT 'u' || i FROM generate_series(1, 1000) i))"
                           ).fetchone() == (1000,)


def test_only_blink_promote_attaches_a_review_to_a_deployment(db, model_a, model_b):
    with db.connect() as owner:
        first = install(owner, model_a.artifact)
    with db.connect(TRAINER_USER) as trainer:
        second = registry.insert_model(trainer, model_b.artifact)
        deployment = registry.promote(trainer, second, "better", '{"reason": "gate passed"}')
        reviews = trainer.execute(
            "SELECT candidate_model_id, decision, deployment_id, reason "
            "FROM blink.blink_promotion_reviews").fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            trainer.execute(
                "INSERT INTO blink.blink_promotion_reviews (candidate_model_id, decision, "
                "gate_passed, reason, deployment_id, candidate_metrics) "
                "VALUES (%s, 'promoted', true, 'forged', %s, '{}')", [first, deployment])
    assert reviews == [(second, "promoted", deployment, "gate passed")]


def test_model_reloads_leave_no_files_or_mappings_behind(db, model_a):
    with db.connect() as owner:
        insert_snapshots(owner, ["u1"], [model_a.population.documents()[0]])
        ids = [install(owner, as_trainer_row(model_a.artifact, version=f"v{i}"), promote=False)
               for i in range(6)]
    with db.connect(APP_USER) as app, db.connect() as owner:
        pid = app.execute("SELECT pg_backend_pid()").fetchone()[0]
        for _ in range(3):
            for model_id in ids:
                owner.execute("SELECT blink_promote(%s)", [model_id])
                app.execute("SELECT blink_score('u1')")
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        with open(f"/proc/{pid}/maps") as maps:
            mapped = {line.split()[-1] for line in maps
                      if "blink-model" in line or "blink_libraries" in line}
    assert sum("blink-model" in target for target in fds) <= 3  # the cache's capacity
    assert 1 <= len(mapped) <= 3  # a shared library file (or memory files), never more


def test_explain_uses_one_champion_per_statement_and_works_read_only(scored_db, model_b):
    users = ["user-1", "user-2", "user-3"]
    with scored_db.connect() as owner:
        other = install(owner, model_b.artifact, promote=False)
        owner.execute("SELECT blink.vet_model(%s)", [other])
    # A promotion committed while one statement explains several users: the statement
    # keeps the champion it saw first.
    with scored_db.connect() as owner:
        champion = owner.execute("SELECT model_id FROM blink_champion()").fetchone()[0]
        owner.execute("""
            CREATE FUNCTION public.promote_midway(n bigint, model bigint) RETURNS bigint
            LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN
                IF n = 2 THEN PERFORM blink.dblink_exec(format(
                    'host=%s port=%s dbname=%s user=postgres',
                    current_setting('unix_socket_directories'), current_setting('port'),
                    current_database()),
                    format('DO $x$ BEGIN PERFORM blink_promote(%s); END $x$', model));
                END IF;
                RETURN n; END $$""")
    with scored_db.connect(APP_USER) as app:
        models = app.execute(
            "SELECT e.model_id FROM unnest(%s::text[]) WITH ORDINALITY AS u(id, n), "
            "LATERAL (SELECT public.promote_midway(u.n, %s)) p, "
            "LATERAL blink_explain(u.id) e WHERE e.rank = 1", [users, other]).fetchall()
        now = app.execute("SELECT model_id FROM blink_champion()").fetchone()[0]
    assert now == other  # the promotion did happen halfway through the statement
    assert [m for (m,) in models] == [champion] * 3
    with scored_db.connect(APP_USER, autocommit=False) as app:
        app.execute("SET TRANSACTION READ ONLY")
        rows = app.execute("SELECT source, scored_at FROM blink_explain('user-7')").fetchall()
        assert rows and {r[0] for r in rows} == {"on-demand"} and rows[0][1] is None
