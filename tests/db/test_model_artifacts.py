"""The trainer's artifact columns are checked on insert."""

from __future__ import annotations


def test_model_artifact_hashes_are_checked_on_insert(db, model_a):
    import psycopg
    import pytest

    from trainer import registry

    artifact = model_a.artifact
    artifact_bad = type(artifact)(**{**artifact.__dict__, "version": "tampered",
                                     "treelite_model_sha256": "0" * 64})
    with db.connect() as conn:
        with pytest.raises(psycopg.errors.DataCorrupted, match="treelite_model_sha256"):
            registry.insert_model(conn, artifact_bad)
        assert registry.model_id_by_version(conn, "tampered") is None
        assert registry.insert_model(conn, artifact) > 0
