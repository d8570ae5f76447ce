"""Trainer: repayment outcomes, model artifacts and reports, promotion reviews.

Revision ID: 0002_trainer
Revises: 0001_core
Create Date: 2026-11-21
"""

from migrations import layers

revision = "0002_trainer"
down_revision = "0001_core"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
