"""Fixtures shared by the database tests."""

import pytest

from tests.db.helpers import insert_snapshots, install


@pytest.fixture
def scored_db(db, model_a):
    """Every synthetic user with one snapshot, model_a champion, nothing audited yet."""
    with db.connect() as conn:
        insert_snapshots(conn, model_a.population.user_ids, model_a.population.documents())
        install(conn, model_a.artifact)
    return db
