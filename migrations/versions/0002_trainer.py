"""Trainer: repayment outcomes, model artifacts and reports, promotion reviews.

Revision ID: 0002_trainer
Revises: 0001_core
Create Date: 2026-11-21
"""

from migrations import layers

revision = "0002_trainer"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    layers.upgrade_step(revision)


def downgrade() -> None:
    layers.downgrade_step(revision)
