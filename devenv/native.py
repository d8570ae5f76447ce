"""blink's PostgreSQL module (db/native/blink_native.c): built here, found by the server.

``blink_score`` calls the champion's compiled trees through this module when the server can
load it, and through PL/Python otherwise (docs/native.md). blink's own clusters (tests, demo,
bench, standbys) load it from the state directory through ``dynamic_library_path``; a DBA
installs it into ``pg_config --pkglibdir`` instead (``make native-install``).

Stdlib only: the Makefile runs ``python3 -m devenv.native`` before any venv exists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devenv.paths import PG_BIN, REPO_ROOT, state_dir

SOURCE = REPO_ROOT / "db" / "native" / "blink_native.c"
MODULE = "blink_native"  # the name db/idempotent/020_score.sql loads it by


class NativeBuildError(RuntimeError):
    """The module could not be compiled (gcc or PostgreSQL's server headers missing)."""


def module_dir() -> Path:
    """Where blink's clusters find the module (their ``dynamic_library_path``)."""
    return state_dir() / "native"


def build(directory: Path | None = None) -> Path:
    """Compile the module into ``directory`` (default ``module_dir()``) unless the file
    there was built from the same source; returns its path."""
    directory = directory or module_dir()
    target = directory / f"{MODULE}.so"
    stamp = directory / f"{MODULE}.sha256"
    digest = hashlib.sha256(SOURCE.read_bytes() + str(PG_BIN).encode()).hexdigest()
    if target.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return target
    compile_module(SOURCE, target)
    stamp.write_text(digest + "\n")
    return target


def compile_module(source: Path, target: Path) -> None:
    """Compile ``source`` into the module file ``target`` with the flags blink ships with
    (bench.native_ab builds a variant of the module this way too). Written under a temporary
    name and renamed: a running server keeps the file it mapped."""
    include = _pg_config("--includedir-server")
    if not (Path(include) / "postgres.h").exists():
        raise NativeBuildError(
            f"PostgreSQL's server headers are not installed ({include}/postgres.h is missing):"
            " install postgresql-server-dev-15 (Debian)")
    if shutil.which("gcc") is None:
        raise NativeBuildError("gcc is not installed: install gcc (Debian)")
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # the server user reads it
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        partial = Path(tmp) / target.name
        done = subprocess.run(
            ["gcc", "-O2", "-fPIC", "-shared", "-Wall", "-Werror", "-std=gnu99",
             f"-I{include}", "-o", str(partial), str(source)],
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise NativeBuildError(f"gcc failed on {source.name}: {done.stderr[-2000:]}")
        partial.chmod(0o755)
        os.replace(partial, target)


def _pg_config(option: str) -> str:
    try:
        done = subprocess.run([str(PG_BIN / "pg_config"), option], capture_output=True,
                              text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise NativeBuildError(f"pg_config {option} failed: {exc}") from None
    return done.stdout.strip()


def install(libdir: str | None = None) -> Path:
    """Build the module and copy it into ``libdir`` (``pg_config --pkglibdir``), where every
    server of that installation finds it by name."""
    built = build()
    destination = Path(libdir or _pg_config("--pkglibdir")) / built.name
    shutil.copy2(built, destination)
    destination.chmod(0o755)
    return destination


def main(argv: list[str]) -> int:
    try:
        if argv[1:] == ["install"]:
            print(f"blink: installed {install()}; run `alembic upgrade head` (or make demo) "
                  "so blink_score uses it")
        else:
            print(f"blink: built {build()}")
    except (NativeBuildError, OSError) as exc:
        print(f"blink: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
