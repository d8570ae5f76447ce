"""Hot standbys of a blink server: PostgreSQL streaming replication, nothing of blink's own.

`python -m devenv.replica` (or `make replica`, for the demo cluster) makes a standby with
``pg_basebackup -R`` (a copy of the primary plus ``standby.signal`` and the primary's
connection string) and starts it on its own port and private socket, with the same server
settings and the same Python environment for PL/Python. Every blink read function works on
it; a promotion on the primary reaches it by replay. docs/scale-out.md has the production
steps this script follows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from devenv.cluster import _pick_port, server_pythonpath, server_settings, socket_url, wait_for
from devenv.paths import PG_BIN, as_server_user, chown_to_server, state_dir


def _conninfo(url: str) -> str:
    """libpq key=value form of a socket URL (pg_basebackup writes it as primary_conninfo)."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    user = parts.netloc.split("@", 1)[0] if "@" in parts.netloc else "postgres"
    host = query.get("host") or parts.hostname or ""
    port = query.get("port") or str(parts.port or 5432)
    return f"host={host} port={port} user={user} application_name=blink_standby"


class Standby:
    """One standby's directory: ``data`` (the copy), ``sockets`` (0700), ``server.log``."""

    def __init__(self, root: Path, database: str) -> None:
        self.root = root
        self.database = database  # the one pg_cron serves, as on the primary
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "server.log"

    @property
    def port(self) -> int:
        return int((self.root / "port").read_text())

    def url(self, database: str | None = None, user: str = "postgres") -> str:
        return socket_url(self.sockets, self.port, database or self.database, user)

    def _run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=server_pythonpath())
        return subprocess.run(as_server_user(argv), env=env, cwd="/", **kwargs)

    def create(self, primary_url: str) -> None:
        """Copy the primary with pg_basebackup (streaming its WAL meanwhile) and configure."""
        if (self.data / "PG_VERSION").exists():
            raise RuntimeError(f"{self.data} already holds a cluster")
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.sockets.mkdir(exist_ok=True)
        self.sockets.chmod(0o700)
        (self.root / "port").write_text(str(_pick_port(self.root)))
        chown_to_server(self.root)
        done = self._run([str(PG_BIN / "pg_basebackup"), "-D", str(self.data), "-R",
                          "-X", "stream", "-c", "fast", "-d", _conninfo(primary_url)],
                         capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {done.stderr.strip()}")

    def start(self) -> None:
        settings = dict(server_settings(self.database), port=str(self.port),
                        unix_socket_directories=str(self.sockets), hot_standby="on")
        # Quoted: pg_ctl passes the options through a shell ($libdir is PostgreSQL's).
        options = " ".join(f"-c {k}='{v}'" for k, v in settings.items())
        self._run([str(PG_BIN / "pg_ctl"), "start", "-w", "-D", str(self.data), "-l",
                   str(self.log), "-o", options], check=True, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        self._run([str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data)],
                  check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for_replay(self, primary_url: str, timeout: float = 30.0) -> bool:
        """Wait until the standby has replayed everything the primary had written by now."""
        import psycopg

        with psycopg.connect(primary_url, autocommit=True) as primary:
            (target,) = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()  # type: ignore[misc]
        with psycopg.connect(self.url(), autocommit=True) as standby:
            def replayed() -> bool:
                row = standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                      [target]).fetchone()
                return bool(row and row[0])

            return wait_for(replayed, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.replica", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python -m devenv.replica --primary \"$(make -s dsn)\"   "
               "# a standby of the demo cluster")
    parser.add_argument("--primary", required=True, help="the primary's superuser URL")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the standby lives (default: <state dir>/standby)")
    parser.add_argument("--stop", action="store_true", help="stop the standby and exit")
    args = parser.parse_args(argv)
    database = urlsplit(args.primary).path.lstrip("/") or "postgres"
    standby = Standby(args.dir or state_dir() / "standby", database)
    if args.stop:
        standby.stop()
        print("blink: standby stopped")
        return 0
    if not (standby.data / "PG_VERSION").exists():
        print(f"blink: copying the primary into {standby.data} (pg_basebackup -R)")
        standby.create(args.primary)
    standby.start()
    standby.wait_for_replay(args.primary)
    print(f"blink: hot standby running; connect with\n  psql \"{standby.url()}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
