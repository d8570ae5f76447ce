"""`make schema`: write db/schema.sql and tests/expected/sql_surface.txt from a fresh install.

Starts a throwaway cluster, runs ``alembic upgrade head`` in an empty database and writes
devenv.catalog's views of it: the tables (db/schema.sql) and the SQL surface (functions and
privileges, which tests/migrations compares). Without ``--write`` it only compares.
"""

from __future__ import annotations

import argparse
import sys

from devenv.paths import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "db" / "schema.sql"
SURFACE_FILE = REPO_ROOT / "tests" / "expected" / "sql_surface.txt"


def fresh_install() -> dict:
    """{path: text} of both files for a fresh install."""
    import psycopg

    from devenv import catalog, migrate
    from devenv.cluster import throwaway_cluster, with_database

    server = throwaway_cluster()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE blink_schema")
        dsn = with_database(server.url(), "blink_schema")
        migrate.upgrade(dsn)
        with psycopg.connect(dsn) as conn:
            return {SCHEMA_FILE: catalog.table_definitions(conn),
                    SURFACE_FILE: catalog.sql_surface(conn)}
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make schema", description=__doc__)
    parser.add_argument("--write", action="store_true", help="write the files")
    args = parser.parse_args(argv)
    stale = 0
    for path, text in fresh_install().items():
        name = path.relative_to(REPO_ROOT)
        if args.write:
            path.write_text(text)
            print(f"wrote {name}")
        elif not path.exists() or path.read_text() != text:
            print(f"{name} is out of date: make schema")
            stale += 1
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
