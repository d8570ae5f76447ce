"""`make lint` runs pgspot over blink's SQL, in the order a fresh install applies it.

The codes ignored below are ones blink answers in another way, each said here:

* PS001/PS016 (unqualified operator or function call): every SECURITY DEFINER function pins
  ``search_path = blink, pg_catalog, pg_temp`` (only the owner can create in schema blink),
  and the lookups that must stay inlinable (no SET) run as their caller, so a shadowing
  operator could only ever act with the caller's own rights.
* PS002/PS015 (CREATE OR REPLACE of a function or view another role might have created
  first): the migration refuses to install while any ``public.blink_*`` function belongs to
  another role, or while another role may create in schema public
  (migrations.layers.check_public_schema, tested in tests/migrations).
* PS004 (SECURITY DEFINER with a search_path other than ``pg_catalog, pg_temp``): ours is
  ``blink, pg_catalog, pg_temp``; schema blink is created by the migration, revoked from
  PUBLIC, and only its owner can create objects in it.
* PS005 (no search_path): the lookups in db/idempotent/010_lookups.sql and
  ``blink.feature_number``, on purpose: a SET would stop the planner from inlining them.
* PS009 (CASE on a value a caller could give another type): the CASE reads a text column.
* PS017 (unqualified catalog reference): only in DO blocks of the released incremental
  files and the privileges file, run once by the installing superuser, never by others.

Sharding's SQL (db/sharding/) is checked too: the model home's and a shard's files after
the install they extend, the router's on its own (a router has no blink install). pgspot
cannot read PL/Proxy bodies (they hold no SQL of their own: the call they forward).
"""

from __future__ import annotations

import subprocess
import sys

from migrations import layers

IGNORED = ["PS001", "PS002", "PS004", "PS005", "PS009", "PS015", "PS016", "PS017"]


def main() -> int:
    files = sorted(layers.INCREMENTAL.glob("[0-9]*[0-9]_*[a-z].sql"))  # upgrade steps only
    files = [f for f in files if not f.name.endswith(".down.sql")] + layers.idempotent_files()
    sharding = layers.REPO_ROOT / "db" / "sharding"
    files += [sharding / "home.sql", sharding / "shard.sql"]
    argv = [sys.executable, "-m", "pgspot", "--append", "--ignore-lang", "plpython3u",
            "--ignore-lang", "plproxy"]
    for code in IGNORED:
        argv += ["--ignore", code]
    worst = 0
    for batch in ([str(f) for f in files], [str(sharding / "router.sql")]):
        result = subprocess.run(argv + batch, capture_output=True, text=True)
        print(result.stdout + result.stderr, end="")
        worst = max(worst, result.returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main())
