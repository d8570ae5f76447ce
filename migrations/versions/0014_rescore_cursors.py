"""Rescoring finds pending users among the snapshots written since its last complete run.

Revision ID: 0014_rescore_cursors
Revises: 0013_rescore_workers
Create Date: 2026-11-23
"""

# The SQL lives in db/incremental/0014_rescore_cursors.sql and .down.sql.
from migrations import layers

revision = "0014_rescore_cursors"
down_revision = "0013_rescore_workers"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
