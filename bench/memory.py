"""Private memory of a backend after each kind of call (issue: keep the scoring path small).

Private memory (Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup) is what a
backend costs on top of what every backend shares (the server binary, shared buffers, the
libraries' read-only pages). Each path runs in a fresh session of the application role, so
one path's imports (numpy, shap for explanations) do not show in another's figure.

The kernel counts a file's page as private while only one process maps it, so a lone
backend would show libpython's and the model library's code (several MB) as its own. As
in any server with more than one connection, a companion session of the same role has
run the same path first and stays open while the measured session runs: pages the two
share are shared. ``alone_mb`` keeps the lone-backend figure of each path, for comparison.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from bench.environment import APP_ROLE, Environment


def private_mb(pid: int) -> float | None:
    """Private memory of process ``pid`` in MB, or None when /proc does not let us read it."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:  # another user's process and we are not root, or no such file
        return None
    kb = sum(int(line.split()[1]) for line in text.splitlines()
             if line.startswith(("Private_Clean:", "Private_Dirty:")))
    return round(kb / 1024, 2)


def backends(env: Environment, batch_users: int) -> dict[str, Any]:
    """MB private to a fresh backend, and to one after blink_score / a batch / an explanation."""
    users = env.population.user_ids
    paths = {
        "fresh": None,
        "blink_score": ("SELECT blink_score(%s)", [users[0]]),
        "blink_score_batch": ("SELECT count(*) FROM blink_score_batch(%s::text[])",
                              [users[:batch_users]]),
        # The user the explanations phase warms up on: its stored audit changes no count.
        "blink_explain": ("SELECT count(*) FROM blink_explain(%s)", [users[-1]]),
    }
    out: dict[str, Any] = {"batch_users": batch_users, "private_mb": {}, "alone_mb": {}}
    for name, call in paths.items():
        out["alone_mb"][name] = _after(env, call)
        with psycopg.connect(env.dsn(APP_ROLE), autocommit=True) as companion:
            if call is not None:
                companion.execute(*call).fetchone()
            out["private_mb"][name] = _after(env, call)
    if out["private_mb"]["fresh"] is None:
        out["unreadable"] = "cannot read the server's /proc/<pid>/smaps_rollup as this user"
    return out


def _after(env: Environment, call: tuple[str, list[Any]] | None) -> float | None:
    """Private MB of a fresh application session after ``call`` (None: no call)."""
    with psycopg.connect(env.dsn(APP_ROLE), autocommit=True) as app:
        row = app.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        if call is not None:
            app.execute(*call).fetchone()
        return private_mb(int(row[0]))
