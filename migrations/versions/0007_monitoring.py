"""Monitoring: model references, the monitoring policy, runs, metrics, events and actions.

Revision ID: 0007_monitoring
Revises: 0006_categorical
Create Date: 2026-11-22
"""

# The SQL lives in db/incremental/0007_monitoring.sql and .down.sql; `make freeze` once final.
from migrations import layers

revision = "0007_monitoring"
down_revision = "0006_categorical"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
