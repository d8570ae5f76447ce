"""pgbench as the SQL load driver: custom scripts, random user ids, per-transaction logs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.stats import summarize

PGBENCH = Path(os.environ.get("BLINK_PG_BIN", "/usr/lib/postgresql/15/bin")) / "pgbench"

# One random user per transaction; pgbench sends :uid as a parameter of a prepared statement.
SCRIPTS = {
    "blink_score": "SELECT blink_score('{prefix}' || :uid);\n",
    "floor": (
        "SELECT features FROM blink.feature_store_snapshots\n"
        "WHERE user_id = '{prefix}' || :uid ORDER BY snapshot_at DESC, id DESC LIMIT 1;\n"
    ),
}


def pgbench_path() -> str:
    found = PGBENCH if PGBENCH.exists() else shutil.which("pgbench")
    if not found:
        raise RuntimeError(f"pgbench not found at {PGBENCH} or on PATH (postgresql-15 package)")
    return str(found)


def parse_logs(directory: Path, warmup: int) -> list[float]:
    """Latencies (ms) from pgbench's per-transaction logs, minus each client's first ``warmup``.

    A log line is ``client_id transaction_no time_us script_no epoch epoch_us``.
    """
    latencies: list[float] = []
    for path in sorted(directory.glob("tx.*")):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and int(fields[1]) >= warmup:
                latencies.append(int(fields[2]) / 1000.0)
    return latencies


def run(kind: str, *, host: str, port: int, database: str, user: str, clients: int,
        seconds: float, n_users: int, prefix: str, warmup: int, timeout: float) -> dict[str, Any]:
    """Run one pgbench point (``kind`` is a key of SCRIPTS) and summarize its latencies.

    Parameters
    ----------
    clients
        Concurrent connections, each running the script back to back for ``seconds``.
    warmup
        Transactions per client left out of the figures (the first one loads the model).
    timeout
        Hard bound on the pgbench process, in seconds.
    """
    seconds_int = max(1, round(seconds))
    with tempfile.TemporaryDirectory(prefix="blink-pgbench-") as tmp:
        workdir = Path(tmp)
        script = workdir / f"{kind}.sql"
        script.write_text("\\set uid random(0, :n_users - 1)\n"
                          + SCRIPTS[kind].format(prefix=prefix))
        argv = [
            pgbench_path(), "--no-vacuum", "--protocol=prepared",
            f"--file={script}", f"--client={clients}", f"--jobs={min(clients, 2)}",
            f"--time={seconds_int}", "--log", f"--log-prefix={workdir / 'tx'}",
            f"--define=n_users={n_users}",
            "-h", host, "-p", str(port), "-U", user, database,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              cwd=workdir, env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
        if done.returncode != 0:
            raise RuntimeError(f"pgbench {kind} failed ({done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        latencies = parse_logs(workdir, warmup)
    summary = summarize(latencies, seconds_int)
    summary.update(driver="pgbench", clients=clients)
    return summary
