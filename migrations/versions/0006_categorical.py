"""Categorical features: blink_models.feature_categories, reason texts per category.

Revision ID: 0006_categorical
Revises: 0005_trust
Create Date: 2026-11-22
"""

# The SQL lives in db/incremental/0006_categorical.sql and .down.sql; `make freeze` once final.
from migrations import layers

revision = "0006_categorical"
down_revision = "0005_trust"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
