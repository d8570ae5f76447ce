"""Rescoring: pg_cron rescoring, SHAP reason codes, shadow models.

Revision ID: 0003_rescoring
Revises: 0002_trainer
Create Date: 2026-11-21
"""

import blink_sql  # noqa: F401

revision = "0003_rescoring"
down_revision = "0002_trainer"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
