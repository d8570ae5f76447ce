"""Each rule in one place: audit source 'rescore', model rows checked by pyfuncs, default reason kept.

Revision ID: 0004_rules_once
Revises: 0003_rescoring
Create Date: 2026-11-22
"""

from migrations import layers

revision = "0004_rules_once"
down_revision = "0003_rescoring"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
