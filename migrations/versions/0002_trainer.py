"""Trainer: repayment outcomes and model report artifacts.

Revision ID: 0002_trainer
Revises: 0001_core
Create Date: 2026-11-21
"""

import blink_sql  # noqa: F401

revision = "0002_trainer"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
