"""Champion reload in open sessions, promotion/rollback history, fallback and artifact integrity."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from pyfuncs.integrity import sha256_hex
from tests.fix_db import (
    APP_USER,
    TRAINER_USER,
    insert_snapshots,
    install,
    library_file,
    remove_as_server,
)
from tests.fix_models import aarch64_copy
from trainer import registry


@pytest.fixture
def users_db(db, model_a):
    with db.connect() as conn:
        insert_snapshots(conn, model_a.population.user_ids[:50],
                         model_a.population.documents()[:50])
    return db


def scores(conn, n=20):
    return np.array([conn.execute("SELECT blink_score(%s)", [f"user-{i}"]).fetchone()[0]
                     for i in range(n)])


def test_promotion_reaches_an_already_open_session(users_db, model_a, model_b):
    features = model_a.population.features[:20]
    with users_db.connect() as owner:
        install(owner, model_a.artifact)
    with users_db.connect(APP_USER) as app:
        assert np.abs(scores(app) - model_a.predict(features)).max() <= 1e-9
        with users_db.connect(TRAINER_USER) as trainer:  # another session promotes
            model_b_id = install(trainer, model_b.artifact)
        # Same connection, next statement: the new champion, no reconnect.
        assert np.abs(scores(app) - model_b.predict(features)).max() <= 1e-9
        assert app.execute("SELECT model_id FROM blink_decide('user-1')").fetchone()[0] \
            == model_b_id
        with users_db.connect(TRAINER_USER) as trainer:
            trainer.execute("SELECT blink_rollback('model b misbehaves')")
        assert np.abs(scores(app) - model_a.predict(features)).max() <= 1e-9


def test_a_transaction_older_than_a_promotion_scores_with_the_champion_it_sees(users_db,
                                                                             model_a, model_b):
    # blink_score reads the champion id from the catalog, which is always the latest
    # committed one; model b's rows (and its vetting, done by blink_promote) are newer than
    # this REPEATABLE READ snapshot, so the call falls back to the champion the snapshot sees.
    with users_db.connect() as owner:
        a = install(owner, model_a.artifact)
    features = model_a.population.features[:5]
    with users_db.connect(APP_USER, autocommit=False) as app:
        app.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        assert np.abs(scores(app, 5) - model_a.predict(features)).max() <= 1e-9
        with users_db.connect(TRAINER_USER) as trainer:
            b = install(trainer, model_b.artifact)
        assert np.abs(scores(app, 5) - model_a.predict(features)).max() <= 1e-9
        assert app.execute("SELECT model_id FROM blink_decide('user-1')").fetchone()[0] == a
        app.commit()
        assert np.abs(scores(app, 5) - model_b.predict(features)).max() <= 1e-9
        assert app.execute("SELECT model_id FROM blink_decide('user-1')").fetchone()[0] == b


def test_uncommitted_promotion_is_not_visible(users_db, model_a, model_b):
    with users_db.connect() as owner:
        install(owner, model_a.artifact)
        model_b_id = install(owner, model_b.artifact, promote=False)
    features = model_a.population.features[:5]
    with users_db.connect(APP_USER) as app, users_db.connect(TRAINER_USER,
                                                             autocommit=False) as trainer:
        trainer.execute("SELECT blink_promote(%s, 'pending')", [model_b_id])
        assert np.abs(scores(app, 5) - model_a.predict(features)).max() <= 1e-9
        trainer.commit()
        assert np.abs(scores(app, 5) - model_b.predict(features)).max() <= 1e-9


def champion_constants(conn):
    """What blink_score folds into its plan: the champion's model id and feature layout."""
    return conn.execute("SELECT blink.champion_model_id(), blink.champion_layout()::text"
                        ).fetchone()


def layout(conn, model_id):
    return conn.execute("SELECT blink.feature_layout(feature_names, feature_categories)::text "
                        "FROM blink.blink_models WHERE id = %s", [model_id]).fetchone()[0]


def test_an_aborted_promotion_leaves_the_champion_constants_and_scores_alone(users_db,
                                                                           model_a, model_b):
    with users_db.connect() as owner:
        a = install(owner, model_a.artifact)
        b = install(owner, model_b.artifact, promote=False)
    features = model_a.population.features[:5]
    with users_db.connect(autocommit=False) as owner:
        owner.execute("SELECT blink_promote(%s, 'to be aborted')", [b])
        # The promoting session sees its own champion at once.
        assert champion_constants(owner)[0] == b
        assert np.abs(scores(owner, 5) - model_b.predict(features)).max() <= 1e-9
        owner.rollback()
        assert champion_constants(owner) == (a, layout(owner, a))
        assert np.abs(scores(owner, 5) - model_a.predict(features)).max() <= 1e-9
    with users_db.connect(APP_USER) as app:
        assert np.abs(scores(app, 5) - model_a.predict(features)).max() <= 1e-9


def test_rollback_walks_back_the_promotion_stack(db, model_a, model_b):
    with db.connect() as conn:
        a = install(conn, model_a.artifact, promote=False)
        b = install(conn, model_b.artifact, promote=False)

        def promote(mid):
            conn.execute("SELECT blink_promote(%s, 'test')", [mid])
            assert champion_constants(conn) == (mid, layout(conn, mid))

        def rollback():
            mid = conn.execute("SELECT model_id FROM blink_rollback('test')").fetchone()[0]
            assert champion_constants(conn) == (mid, layout(conn, mid))
            return mid

        assert champion_constants(conn) == (None, None)
        promote(a), promote(b), promote(a)          # history: a, b, a
        assert rollback() == b                      # back to b
        assert rollback() == a                      # back to the first a
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                           match="nothing to roll back to"):
            rollback()
        history = conn.execute(
            "SELECT model_id, action FROM blink.blink_deployments ORDER BY id").fetchall()
        assert history == [(a, "promote"), (b, "promote"), (a, "promote"),
                           (b, "rollback"), (a, "rollback")]


def test_promote_refuses_unknown_and_current_champion(db, model_a):
    with db.connect() as conn:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="no champion"):
            conn.execute("SELECT blink_rollback()")
        a = install(conn, model_a.artifact)
        with pytest.raises(psycopg.errors.NoDataFound, match="no model with id 999"):
            conn.execute("SELECT blink_promote(999)")
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                           match="already the champion"):
            conn.execute("SELECT blink_promote(%s)", [a])
        deployed_by, reason = conn.execute(
            "SELECT deployed_by, reason FROM blink.blink_deployments").fetchone()
    assert (deployed_by, reason) == ("postgres", "test")


def test_library_that_cannot_load_falls_back_with_a_warning(users_db, model_a):
    # A vetted library built on another platform (a replica on another architecture, say).
    foreign = aarch64_copy(model_a.artifact.compiled_lib)
    with users_db.connect() as owner:
        model_id = install(owner, model_a.artifact, promote=False)
        owner.execute(
            "INSERT INTO blink.vetted_models (model_id, compiled_lib, compiled_lib_sha256, "
            "compiled_platform, model_text_sha256, parity_max_abs_diff, library_versions) "
            "VALUES (%s, %s, %s, 'aarch64-linux-glibc2.36', %s, 0, '{}')",
            [model_id, foreign, sha256_hex(foreign), "0" * 64])
        owner.execute("SELECT blink_promote(%s)", [model_id])
    notices = []
    with users_db.connect(APP_USER) as app:
        app.add_notice_handler(lambda diag: notices.append((diag.severity, diag.message_primary)))
        got = scores(app)
    assert np.abs(got - model_a.predict(model_a.population.features[:20])).max() <= 1e-9
    warnings = [m for s, m in notices if s == "WARNING"]
    assert len(warnings) == 1  # once per session, at load, not per call
    assert "cannot be loaded" in warnings[0] and "LightGBM" in warnings[0]


def test_tampered_library_is_never_executed(users_db, model_a):
    expected = model_a.predict(model_a.population.features[1:2])[0]
    with users_db.connect() as owner:
        model_id = install(owner, model_a.artifact)
        owner.execute("SELECT blink_score('user-1')")  # this server writes the library file
        # Only a superuser bypassing the guards can do this; blink must still refuse it.
        owner.execute("ALTER TABLE blink.vetted_models DISABLE TRIGGER vetted_models_append_only")
        owner.execute("UPDATE blink.vetted_models SET compiled_lib = compiled_lib || '\\x00'::bytea"
                      " WHERE model_id = %s", [model_id])
        owner.execute("ALTER TABLE blink.vetted_models ENABLE TRIGGER vetted_models_append_only")
    # The file was checked against the vetted sha256 when written: it still runs, the
    # tampered bytes do not. A server without the file (a new standby) refuses them.
    with users_db.connect(APP_USER) as app:
        assert app.execute("SELECT blink_score('user-1')").fetchone()[0] == pytest.approx(
            expected, abs=1e-9)
    with users_db.connect() as owner:
        remove_as_server(owner, library_file(owner))
    with users_db.connect(APP_USER) as app:
        with pytest.raises(psycopg.errors.DataCorrupted, match="sha256 mismatch") as info:
            app.execute("SELECT blink_score('user-1')")
    assert f"model {model_id}" in str(info.value)


def test_models_and_history_are_immutable(db, model_a):
    with db.connect() as conn:
        model_id = install(conn, model_a.artifact)
        for sql in ("UPDATE blink.blink_models SET decision_threshold = 0.9",
                    "DELETE FROM blink.blink_models",
                    "TRUNCATE blink.blink_models CASCADE",
                    "UPDATE blink.blink_deployments SET reason = 'x'",
                    "DELETE FROM blink.blink_deployments",
                    "DELETE FROM blink.risk_score_audits",
                    "DELETE FROM blink.blink_promotion_reviews",
                    "TRUNCATE blink.blink_promotion_reviews"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="immutable"):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM blink.blink_models WHERE id = %s",
                            [model_id]).fetchone()[0] == 1


def test_insert_checks_hash_and_feature_names(db, model_a):
    bad_hash = model_a.artifact.__class__(**{**model_a.artifact.__dict__, "version": "bad-hash",
                                             "compiled_lib_sha256": "0" * 64})
    dup = model_a.artifact.__class__(**{**model_a.artifact.__dict__, "version": "dup",
                                        "feature_names": ["a", "a", "b", "c", "d", "e", "f"]})
    with db.connect() as conn:
        with pytest.raises(psycopg.errors.DataCorrupted, match="does not match"):
            registry.insert_model(conn, bad_hash)
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="distinct"):
            registry.insert_model(conn, dup)
        assert conn.execute("SELECT count(*) FROM blink.blink_models").fetchone()[0] == 0


def test_promotions_prune_the_library_files_of_models_blink_no_longer_runs(users_db, model_a,
                                                                          model_b, model_cat):
    import os

    from pyfuncs import library_files

    with users_db.connect() as owner:
        data_dir, oid = owner.execute(
            "SELECT current_setting('data_directory'), oid FROM pg_database "
            "WHERE datname = current_database()").fetchone()
        directory = library_files.directory_in(data_dir, oid)

        def files() -> set[str]:
            return set(os.listdir(directory))

        def score_in_a_new_session() -> None:  # it loads the champion: from its file or bytes
            with users_db.connect() as session:
                assert session.execute("SELECT blink_score('user-1')").fetchone()[0] is not None

        def champion_file(model_id: int) -> str:
            owner.execute("SELECT blink_promote(%s)", [model_id])
            score_in_a_new_session()
            sha = owner.execute("SELECT compiled_lib_sha256 FROM blink.vetted_models "
                                "WHERE model_id = %s", [model_id]).fetchone()[0]
            return f"{sha}.so"

        def age_files() -> None:  # past the grace given to files another session may load
            for name in files():
                old = os.stat(os.path.join(directory, name)).st_mtime - 3600
                os.utime(os.path.join(directory, name), (old, old))

        # No probation: a replaced champion would otherwise stay live, as a shadow.
        owner.execute("UPDATE blink.monitoring_policy SET probation = '0'")
        a, b, c = (install(owner, m.artifact, promote=False) for m in (model_a, model_b, model_cat))
        file_a, file_b = champion_file(a), champion_file(b)
        assert files() == {file_a, file_b}  # a is b's rollback target
        age_files()
        file_c = champion_file(c)
        assert files() == {file_b, file_c}  # c champion, b its rollback target, a neither
        age_files()
        owner.execute("SELECT blink_shadow_add(%s)", [a])
        owner.execute("SELECT blink_rollback('test')")
        # b is champion again, a its rollback target and a shadow, c none of these.
        assert files() == {file_b}
        score_in_a_new_session()
        assert champion_file(c) == file_c and files() == {file_b, file_c}  # written again
