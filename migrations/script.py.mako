"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

# The SQL lives in db/incremental/${up_revision}.sql and .down.sql; `make freeze` once final.
from migrations import layers

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}
upgrade, downgrade = layers.steps(revision)
