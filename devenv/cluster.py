"""PostgreSQL clusters for tests (throwaway, testing.postgresql) and the demo (project-local).

Both run the server as the unprivileged server user when we are root, preload pg_cron, and
give the server a PYTHONPATH holding the server venv's site-packages and blink's ``pyfuncs``,
so PL/Python imports exactly the code in this checkout.

They listen on a Unix socket only, in a directory only the server's OS user can enter
(mode 0700; root passes anyway): authentication is ``trust``, so no other local user may
reach the socket, and there is no TCP listener. ``make bench`` asks for TCP on 127.0.0.1
(``tcp=True``), because its latency figures compare with an HTTP service over TCP.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path

from devenv import native
from devenv.paths import (
    PG_BIN,
    REPO_ROOT,
    as_server_user,
    chown_to_server,
    server_can_read,
    server_venv_dir,
    state_dir,
)

INITDB_ARGS = ["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"]


def server_settings(database: str, tcp: bool = False) -> dict[str, str]:
    """Server settings every blink cluster gets: pg_cron preloaded and pointed at ``database``."""
    return {
        "shared_preload_libraries": "pg_cron",
        "cron.database_name": database,
        "cron.use_background_workers": "on",
        "max_worker_processes": "16",
        "listen_addresses": "127.0.0.1" if tcp else "",
        "unix_socket_permissions": "0700",
        "fsync": "off" if database == "test" else "on",
        # A model home publishes its model tables to shards (docs/scale-out.md); logical
        # only adds a little to the WAL of a server that never publishes.
        "wal_level": "logical",
        # blink's PostgreSQL module, built into the state directory (devenv/native.py).
        "dynamic_library_path": f"$libdir:{native.module_dir()}",
    }


def socket_url(socket_dir: str | Path, port: int, database: str, user: str = "postgres") -> str:
    """A libpq URL for a server reached through its Unix socket directory."""
    return f"postgresql://{user}@/{database}?host={socket_dir}&port={port}"


def with_database(url: str, database: str, user: str | None = None) -> str:
    """``url`` pointed at another database (and user), whatever its form (TCP or socket)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if user is not None:
        netloc = f"{user}@{netloc.split('@', 1)[-1]}"
    return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))


def server_site_packages() -> Path:
    """site-packages of the server's environment (``make venv`` builds it)."""
    version = sysconfig.get_python_version()  # both venvs come from /usr/bin/python3
    site = server_venv_dir() / "lib" / f"python{version}" / "site-packages"
    if not site.is_dir():
        raise RuntimeError(f"no server environment at {site.parent.parent.parent}; run `make venv`")
    return site


def server_pythonpath() -> str:
    """PYTHONPATH for the server: pyfuncs' parent directory, then the server venv's packages."""
    site = server_site_packages()
    if server_can_read(REPO_ROOT / "pyfuncs" / "__init__.py"):
        source = REPO_ROOT
    else:
        # The checkout is private (say, under a 0700 home): give the server its own copy.
        source = state_dir() / "pysrc"
        shutil.rmtree(source, ignore_errors=True)
        shutil.copytree(REPO_ROOT / "pyfuncs", source / "pyfuncs",
                        ignore=shutil.ignore_patterns("__pycache__"))
        os.chmod(source, 0o755)
    # Byte-compile now: the server user cannot write __pycache__ here, and compiling the
    # sources in every new backend would add ~5 ms to each session's first call.
    compileall.compile_dir(str(source / "pyfuncs"), quiet=1)
    if not server_can_read(site):
        raise RuntimeError(
            f"the PostgreSQL server user cannot read the Python environment at {site}; "
            "build the venv with `make venv` so it lands in a directory the server can read"
        )
    return os.pathsep.join([str(source), str(site)])


def _write_wrapper(path: Path, binary: str, pythonpath: str) -> str:
    argv = " ".join(f"'{a}'" for a in as_server_user([str(PG_BIN / binary)]))
    path.write_text(f"#!/bin/sh\nexport PYTHONPATH='{pythonpath}'\nexec {argv} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


def throwaway_cluster(database: str = "test", tcp: bool = False):
    """Start a throwaway cluster with testing.postgresql; call ``.stop()`` when done.

    ``.url()`` is its superuser URL (through the private socket unless ``tcp``).
    """
    import testing.postgresql

    class _Cluster(testing.postgresql.Postgresql):
        def initialize_database(self) -> None:
            sockets = Path(self.base_dir) / "tmp"
            chown_to_server(Path(self.base_dir))  # initdb runs as the server user
            sockets.chmod(0o700)  # the socket's gate: only the server's OS user (and root)
            super().initialize_database()

        def dsn(self, **kwargs):  # what testing.postgresql connects with (pg8000)
            params = super().dsn(**kwargs)
            if not tcp:
                params.pop("host")
                params["unix_sock"] = f"{self.base_dir}/tmp/.s.PGSQL.{params.pop('port')}"
            return params

        def url(self, **kwargs) -> str:
            if tcp:
                return super().url(**kwargs)
            return socket_url(f"{self.base_dir}/tmp", self.settings["port"],
                              kwargs.get("database", "test"), kwargs.get("user", "postgres"))

        def cleanup(self) -> None:
            super().cleanup()
            shutil.rmtree(self.base_dir, ignore_errors=True)

    base = Path(tempfile.mkdtemp(prefix="blink-test-"))
    base.chmod(0o755)
    wrappers = base / "bin"
    wrappers.mkdir()
    pythonpath = server_pythonpath()
    native.build()
    settings = " ".join(f"-c {k}={v}" for k, v in server_settings(database, tcp).items())
    return _Cluster(
        base_dir=str(base),
        initdb=_write_wrapper(wrappers / "initdb", "initdb", pythonpath),
        postgres=_write_wrapper(wrappers / "postgres", "postgres", pythonpath),
        initdb_args=" ".join(INITDB_ARGS),
        postgres_args=f"-F {settings}",
    )


class LocalCluster:
    """The project-local demo cluster: created once, started or reused on demand."""

    database = "blink"

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or state_dir() / "pg"
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"

    @property
    def port(self) -> int:
        return int((self.root / "port").read_text())

    def dsn(self, user: str = "postgres", database: str | None = None) -> str:
        return socket_url(self.sockets, self.port, database or self.database, user)

    def _run(self, argv: list[str], server_env: bool = False,
             **kwargs) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=server_pythonpath()) if server_env else None
        # cwd "/": the checkout may be unreadable to the server user (pg_ctl complains).
        return subprocess.run(as_server_user(argv), env=env, cwd="/", **kwargs)

    def is_running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        status = self._run([str(PG_BIN / "pg_ctl"), "status", "-D", str(self.data)],
                           capture_output=True)
        return status.returncode == 0

    def _initialize(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.sockets.mkdir(exist_ok=True)
        self.sockets.chmod(0o700)  # with chown below: only the server's OS user gets in
        (self.root / "port").write_text(str(_pick_port(self.root)))
        chown_to_server(self.root)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), *INITDB_ARGS],
                  check=True, capture_output=True)
        settings = dict(server_settings(self.database), port=str(self.port),
                        unix_socket_directories=str(self.sockets))
        conf = "".join(f"{k} = '{v}'\n" for k, v in settings.items())
        self._run(["sh", "-c", f"cat >> '{self.data}/postgresql.conf'"], input=conf.encode(),
                  check=True)

    def start(self) -> None:
        native.build()
        if not (self.data / "PG_VERSION").exists():
            self._initialize()
        if not self.is_running():
            self.sockets.chmod(0o700)  # also for clusters made before this rule
            # Settings of clusters made before a rule was added are overridden here.
            self._run([str(PG_BIN / "pg_ctl"), "start", "-w", "-D", str(self.data),
                       "-l", str(self.log), "-o",
                       "-c listen_addresses= -c unix_socket_permissions=0700"
                       " -c wal_level=logical -c dynamic_library_path="
                       f"'{server_settings(self.database)['dynamic_library_path']}'"],
                      server_env=True, check=True, stdout=subprocess.DEVNULL)
        self._ensure_database()

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn(database="postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  [self.database]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self) -> bool:
        if not self.is_running():
            return False
        self._run([str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data)],
                  check=True, stdout=subprocess.DEVNULL)
        return True


def _pick_port(root: Path) -> int:
    """A stable port per checkout (so the DSN does not change), or any free one if taken."""
    preferred = 20000 + int(hashlib.sha256(str(root).encode()).hexdigest(), 16) % 10000
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return s.getsockname()[1]
            except OSError:
                continue
    raise RuntimeError("no free TCP port on 127.0.0.1")


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
