"""Where blink's local state (venv, demo cluster) lives and which OS user runs the server.

Stdlib only: the Makefile calls this with the system Python before any venv exists.
PostgreSQL refuses to run as root, so when we are root the server runs as an unprivileged
user (``postgres``), and everything it reads must be readable by that user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("BLINK_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_PYTHON = "/usr/bin/python3"  # the interpreter PL/Python is linked against


def server_user() -> str | None:
    """OS user the PostgreSQL server runs as; None means "the current user"."""
    if os.geteuid() != 0:
        return None
    return os.environ.get("BLINK_SERVER_USER", "postgres")


def as_server_user(argv: list[str]) -> list[str]:
    """Prefix ``argv`` so it runs as the server user (setpriv execs, so the pid is kept)."""
    user = server_user()
    if user is None:
        return argv
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv]


def server_can_read(path: Path) -> bool:
    """True when the server user can read ``path`` (and traverse every directory above it)."""
    user = server_user()
    if user is None:
        return os.access(path, os.R_OK)
    try:
        pwd.getpwnam(user)
    except KeyError:
        # Before the Debian package has created the user: judge by the "other" permission bits.
        return _world_readable(path)
    return subprocess.run(as_server_user(["test", "-r", str(path)])).returncode == 0


def _world_readable(path: Path) -> bool:
    path = path.resolve()
    if not os.stat(path).st_mode & stat.S_IROTH:
        return False
    return all(os.stat(parent).st_mode & stat.S_IXOTH for parent in path.parents)


def state_dir() -> Path:
    """Directory for the venv, the demo cluster and the server's copy of pyfuncs.

    ``.blink/`` inside the checkout when the server user can read the checkout, else a
    per-checkout directory under /var/tmp (world-traversable), so a checkout under a
    0700 home directory still works.
    """
    override = os.environ.get("BLINK_STATE_DIR")
    if override:
        return Path(override)
    if server_can_read(REPO_ROOT / "pyproject.toml"):
        return REPO_ROOT / ".blink"
    digest = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"blink-{digest}"


def venv_dir() -> Path:
    return state_dir() / "venv"


def server_venv_dir() -> Path:
    """The server's own environment: only what PL/Python imports (pyproject's core deps)."""
    return state_dir() / "server-venv"


def server_requirements() -> list[str]:
    """pyproject.toml's core dependencies: what the server's environment gets."""
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def chown_to_server(path: Path) -> None:
    """Give ``path`` (recursively) to the server user, when that is another user."""
    user = server_user()
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.lchown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def main(argv: list[str]) -> int:
    commands = {
        "state-dir": lambda: print(state_dir()),
        "venv-dir": lambda: print(venv_dir()),
        "server-requirements": lambda: print(" ".join(server_requirements())),
        "server-user": lambda: print(server_user() or os.environ.get("USER", "")),
    }
    if len(argv) != 2 or argv[1] not in commands:
        print(f"usage: {argv[0]} {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    commands[argv[1]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
