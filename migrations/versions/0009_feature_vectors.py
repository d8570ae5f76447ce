"""Typed feature vectors beside the JSON snapshots, and the feature layout of each deployment.

Revision ID: 0009_feature_vectors
Revises: 0008_model_publication
Create Date: 2026-11-23
"""

# The SQL lives in db/incremental/0009_feature_vectors.sql and .down.sql.
from migrations import layers

revision = "0009_feature_vectors"
down_revision = "0008_model_publication"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
