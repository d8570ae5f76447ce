"""The champion as constants in blink_score's plan, redefined after every deployment.

Revision ID: 0011_champion_constants
Revises: 0010_vector_refreshes
Create Date: 2026-11-22
"""

# The SQL lives in db/incremental/0011_champion_constants.sql and .down.sql.
from migrations import layers

revision = "0011_champion_constants"
down_revision = "0010_vector_refreshes"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
