"""Trust boundaries: server-built libraries (vetted_models), quarantine, reviews by blink_promote.

Revision ID: 0005_trust
Revises: 0004_rules_once
Create Date: 2026-11-22
"""

# The SQL lives in db/incremental/0005_trust.sql and .down.sql; `make freeze` once final.
from migrations import layers

revision = "0005_trust"
down_revision = "0004_rules_once"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
