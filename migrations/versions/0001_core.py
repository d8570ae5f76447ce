"""Scoring core: schema blink, roles, feature store, models, deployments, audits, scoring API.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-21
"""

from migrations import layers

revision = "0001_core"
down_revision = None
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
