"""A replica identity for blink.reason_codes, so the model home can publish it to shards.

Revision ID: 0008_model_publication
Revises: 0007_monitoring
Create Date: 2026-11-23
"""

# The SQL lives in db/incremental/0008_model_publication.sql and .down.sql.
from migrations import layers

revision = "0008_model_publication"
down_revision = "0007_monitoring"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
