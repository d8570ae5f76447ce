"""blink's SQL on disk, in two layers, and how alembic applies them.

* ``db/incremental/NNNN_name.sql`` (and ``NNNN_name.down.sql``): state (schema, tables,
  indexes, triggers, roles, table grants). Each alembic revision runs its file once. Once
  released a file is frozen by its sha256 in ``db/incremental/frozen.txt`` and never edited:
  a migration always does what it did the day it shipped.
* ``db/idempotent/*.sql``: every function, view and function privilege, as CREATE OR
  REPLACE, applied in file-name order (privileges last) after every ``alembic upgrade`` that
  ends at head. The API exists only at head; a downgrade first removes it whole.

Nothing here cascades: an object blink did not create that depends on blink's stops the
operation with PostgreSQL's own error naming it.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
INCREMENTAL = REPO_ROOT / "db" / "incremental"
IDEMPOTENT = REPO_ROOT / "db" / "idempotent"
FROZEN = INCREMENTAL / "frozen.txt"


class MigrationRefused(RuntimeError):
    """The migration would do something unsafe; nothing was changed."""


def say(message: str) -> None:
    """Tell the DBA what the migration does (stderr, whatever alembic's logging says)."""
    print(f"blink: {message}", file=sys.stderr)


# --- the frozen incremental layer ---------------------------------------------------------


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frozen() -> dict[str, str]:
    """File name -> sha256 of every released incremental file (``sha256sum`` format)."""
    entries = {}
    for line in FROZEN.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            entries[name.strip()] = digest
    return entries


def frozen_problems() -> list[str]:
    """Why the incremental layer does not match frozen.txt (empty when it does)."""
    released = frozen()
    problems = []
    for path in sorted(INCREMENTAL.glob("*.sql")):
        expected = released.get(path.name)
        if expected is None:
            problems.append(f"db/incremental/{path.name} is not frozen: once it is final, "
                            "run `make freeze` to record its sha256 in frozen.txt")
        elif sha256_file(path) != expected:
            problems.append(
                f"db/incremental/{path.name} was edited after release (sha256 "
                f"{sha256_file(path)[:12]}..., frozen {expected[:12]}...): released "
                "incremental SQL never changes, or databases already past it would differ "
                "from new ones. Restore it (git checkout) and put the change in a new "
                "numbered file with its own alembic revision.")
    for name in sorted(set(released) - {p.name for p in INCREMENTAL.glob("*.sql")}):
        problems.append(f"db/incremental/{name} is frozen but missing: released files stay")
    return problems


def freeze() -> list[str]:
    """Append the sha256 of every incremental file not yet frozen; never change an entry."""
    released = frozen()
    edited = [p for p in frozen_problems() if "edited after release" in p]
    if edited:
        raise MigrationRefused("; ".join(edited))
    added = [p.name for p in sorted(INCREMENTAL.glob("*.sql")) if p.name not in released]
    with FROZEN.open("a") as handle:
        for name in added:
            handle.write(f"{sha256_file(INCREMENTAL / name)}  {name}\n")
    return added


def step_sql(revision: str, down: bool = False) -> str:
    """The SQL of one revision's step, refused if its released file was edited."""
    path = INCREMENTAL / f"{revision}{'.down' if down else ''}.sql"
    expected = frozen().get(path.name)
    if expected is not None and sha256_file(path) != expected:
        raise MigrationRefused(
            f"db/incremental/{path.name} differs from the released file (frozen.txt); "
            "refusing to run an edited migration")
    return path.read_text()


# --- dropping data, only when asked -------------------------------------------------------

_ALTER = re.compile(r"ALTER\s+TABLE\s+(?:ONLY\s+)?([\w.]+)(.*?);", re.S | re.I)
_DROP_COLUMN = re.compile(r"DROP\s+COLUMN\s+(?:IF\s+EXISTS\s+)?(\w+)", re.I)
_DROP_TABLE = re.compile(r"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?([\w.]+(?:\s*,\s*[\w.]+)*)", re.I)


def dropped_data(sql: str) -> list[tuple[str, str | None]]:
    """(table, column or None for the whole table) of every DROP TABLE / DROP COLUMN in sql."""
    found: list[tuple[str, str | None]] = []
    for match in _DROP_TABLE.finditer(sql):
        found.extend((name.strip(), None) for name in match.group(1).split(","))
    for table, body in _ALTER.findall(sql):
        found.extend((table, column) for column in _DROP_COLUMN.findall(body))
    return found


# Settings tables whose one row upgrade recreates with defaults: not data. An edited
# monitoring policy is also in blink.monitoring_policy_history, which is checked.
# Tables a downgrade may drop with their rows: settings (the upgrade restores the defaults)
# and bookkeeping that blink derives again.
NOT_DATA_TABLES = {"blink.monitoring_policy", "blink.feature_vector_refreshes",
                   "blink.rescore_cursors"}
# Columns a downgrade may drop with their values: bookkeeping nobody wrote (without
# written_xid and rescore_cursors, rescoring reads every user, as it did before 0014).
NOT_DATA_COLUMNS = {("blink.feature_store_snapshots", "written_xid")}


def data_at_risk(conn: Any, sql: str) -> list[str]:
    """What a down step would destroy: tables with rows and non-null columns, with counts."""
    at_risk = []
    for table, column in dropped_data(sql):
        if (table, column) in NOT_DATA_COLUMNS or (column is None and table in NOT_DATA_TABLES):
            continue
        if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is None:
            continue
        where = "" if column is None else f" WHERE {column} IS NOT NULL"
        (rows,) = conn.execute(f"SELECT count(*) FROM {table}{where}").fetchone()
        if rows:
            what = table if column is None else f"{table}.{column}"
            at_risk.append(f"{what} ({rows} row{'s' if rows != 1 else ''})")
    return at_risk


# --- the idempotent API layer -------------------------------------------------------------

# blink's API: every view of schema blink, every function of schema blink except trigger
# functions (state: the incremental layer's triggers use them) and extension members (dblink),
# and every function of schema public named blink_*.
API_OBJECTS = r"""
SELECT 'VIEW', c.oid::regclass::text
FROM pg_catalog.pg_class c
WHERE c.relnamespace = to_regnamespace('blink') AND c.relkind = 'v'
UNION ALL
SELECT 'FUNCTION', p.oid::regprocedure::text
FROM pg_catalog.pg_proc p
WHERE (p.pronamespace = to_regnamespace('blink') AND p.prorettype <> 'trigger'::regtype
       OR p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'blink\_%')
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1 DESC, 2
"""

# public.blink_* functions that another role owns: installing over them would leave that
# role's code in blink's API (and granted to blink_app).
FOREIGN_API = r"""
SELECT p.oid::regprocedure::text, pg_catalog.pg_get_userbyid(p.proowner)
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'blink\_%'
  AND p.proowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
ORDER BY 1
"""

# Roles other than superusers and the installer that may create objects in schema public,
# where blink's API lives: any of them could shadow or pre-create a blink function.
PUBLIC_CREATORS = r"""
SELECT r.rolname FROM pg_catalog.pg_roles r
WHERE NOT r.rolsuper AND r.rolname <> current_user AND r.rolname !~ '^pg_'
  AND pg_catalog.has_schema_privilege(r.oid, 'public', 'CREATE')
ORDER BY 1
"""


def api_objects(conn: Any) -> list[tuple[str, str]]:
    """(kind, identity) of every object of blink's idempotent layer now in the database."""
    return [(kind, name) for kind, name in conn.execute(API_OBJECTS).fetchall()]


def drop_api(conn: Any) -> None:
    """Remove the whole idempotent layer (views first), without CASCADE."""
    for kind, name in api_objects(conn):
        conn.execute(f"DROP {kind} {name}")
    if api_objects(conn):  # pragma: no cover - a DROP above would have raised
        raise MigrationRefused("blink's API could not be removed")


def check_public_schema(conn: Any) -> None:
    """Refuse to install blink's API where another role owns or may create blink_* names."""
    foreign = conn.execute(FOREIGN_API).fetchall()
    if foreign:
        listed = ", ".join(f"{name} (owned by {owner})" for name, owner in foreign)
        raise MigrationRefused(
            f"schema public already holds blink function(s) owned by another role: {listed}. "
            "blink will not install its API over them. Inspect and drop them, then upgrade.")
    creators = [r for (r,) in conn.execute(PUBLIC_CREATORS).fetchall()]
    if creators:
        raise MigrationRefused(
            f"role(s) {', '.join(creators)} may create objects in schema public, where blink's "
            "API lives, and could replace or shadow it. Run REVOKE CREATE ON SCHEMA public "
            f"FROM {', '.join(creators)}; (PUBLIC's CREATE is revoked by default since "
            "PostgreSQL 15), then upgrade.")


def idempotent_files() -> list[Path]:
    return sorted(IDEMPOTENT.glob("*.sql"))


def apply_api(conn: Any) -> None:
    """(Re)apply every idempotent file, in order, after checking schema public is safe."""
    check_public_schema(conn)
    for path in idempotent_files():
        conn.execute(path.read_text())


# The champion and the shadows: the models blink runs without being asked again.
LIVE_UNVETTED = """
SELECT live.model_id FROM (SELECT model_id FROM blink.champion()
                           UNION SELECT model_id FROM blink.blink_shadow_models) live
WHERE NOT EXISTS (SELECT FROM blink.vetted_models v WHERE v.model_id = live.model_id)
ORDER BY 1
"""


def vet_live_models(conn: Any) -> None:
    """Vet the champion and shadows not vetted yet (models promoted before vetting existed)."""
    for (model_id,) in conn.execute(LIVE_UNVETTED).fetchall():
        say(f"vetting live model {model_id} (the server builds its library; this may take a while)")
        conn.execute("SELECT blink.vet_model(%s)", [model_id])


# --- one revision's step, as alembic calls it ---------------------------------------------


def _connection() -> Any:
    from alembic import op

    return op.get_bind().connection.driver_connection


def _option(name: str) -> str | None:
    """A ``-x name=value`` argument, or ``config.attributes[name]`` set by a program."""
    from alembic import context

    value = context.get_x_argument(as_dictionary=True).get(name)
    return value if value is not None else context.config.attributes.get(name)


def steps(revision: str) -> tuple[Any, Any]:
    """A revision's ``upgrade`` and ``downgrade``: run its pair of incremental files.

    Each file of migrations/versions/ is ``upgrade, downgrade = layers.steps(revision)``.
    """
    return (lambda: upgrade_step(revision)), (lambda: downgrade_step(revision))


def upgrade_step(revision: str) -> None:
    say(f"{revision}: applying db/incremental/{revision}.sql")
    _connection().execute(step_sql(revision))


def downgrade_step(revision: str) -> None:
    """Remove the API (first step of any downgrade), then undo the revision's state.

    Refuses, changing nothing, when the step would drop rows or non-null values, unless
    ``-x drop_data=yes`` says the data may go.
    """
    conn = _connection()
    sql = step_sql(revision, down=True)
    at_risk = data_at_risk(conn, sql)
    if at_risk and _option("drop_data") != "yes":
        raise MigrationRefused(
            f"downgrading {revision} would delete data: {', '.join(at_risk)}. Back it up, then "
            "confirm with: alembic -x drop_data=yes downgrade ...")
    if api_objects(conn):
        say("removing blink's API (functions and views); `alembic upgrade head` restores it")
        drop_api(conn)
    for table, column in dropped_data(sql):
        say(f"{revision}: dropping {table if column is None else f'column {table}.{column}'}")
    say(f"{revision}: applying db/incremental/{revision}.down.sql")
    conn.execute(sql)
