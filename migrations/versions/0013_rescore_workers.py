"""Rescoring split among workers: blink_rescore_pending(worker, workers), blink_schedule.

Revision ID: 0013_rescore_workers
Revises: 0012_user_ids_bytes
Create Date: 2026-11-23
"""

# The SQL lives in db/incremental/0013_rescore_workers.sql and .down.sql.
from migrations import layers

revision = "0013_rescore_workers"
down_revision = "0012_user_ids_bytes"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
