"""Which deployments' feature vectors are all rebuilt (the scheduled refresh skips them).

Revision ID: 0010_vector_refreshes
Revises: 0009_feature_vectors
Create Date: 2026-11-22
"""

# The SQL lives in db/incremental/0010_vector_refreshes.sql and .down.sql.
from migrations import layers

revision = "0010_vector_refreshes"
down_revision = "0009_feature_vectors"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
