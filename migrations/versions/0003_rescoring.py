"""Rescoring: reason codes, shadow models, dblink for pg_cron (SQL in db/incremental/0003_rescoring.sql).

pg_cron itself is not created here: it can only live in the cluster's cron.database_name,
which is usually not blink's database. A DBA creates it there once; blink_schedule() then
installs this database's jobs (see docs/rescoring.md).

Revision ID: 0003_rescoring
Revises: 0002_trainer
Create Date: 2026-11-21
"""

from migrations import layers

revision = "0003_rescoring"
down_revision = "0002_trainer"
branch_labels = depends_on = None

upgrade, downgrade = layers.steps(revision)
