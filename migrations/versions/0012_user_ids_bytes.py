"""User ids compare byte by byte (COLLATE "C") in every table of blink that stores one.

Revision ID: 0012_user_ids_bytes
Revises: 0011_champion_constants
Create Date: 2026-11-23
"""

# The SQL lives in db/incremental/0012_user_ids_bytes.sql and .down.sql.
from migrations import layers

revision = "0012_user_ids_bytes"
down_revision = "0011_champion_constants"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
