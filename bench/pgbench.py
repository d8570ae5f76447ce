"""pgbench as the SQL load driver: custom scripts, random user ids, per-transaction logs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.stats import Samples

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


def read_logs(directory: Path, warmup: int, script: int | None = None) -> Samples:
    """Latencies (ms) from pgbench's per-transaction logs, counted once every client is warm.

    A log line is ``client_id transaction_no time_us script_no epoch epoch_us``, the epoch
    being when the transaction ended. Each client's first ``warmup`` transactions are left
    out, and so is every transaction that started before the last client finished its
    warm-up: a backend's first ``blink_score`` loads the model, and while one backend does
    that the others' calls wait for the CPU. The timed window runs from that moment to the
    last transaction's end (the Python client does the same with a barrier). ``script``
    (pgbench's script number, from 0) keeps only that script's transactions; the window is
    the whole run's either way.
    """
    rows: list[tuple[int, int, int, int, int]] = []  # client, transaction, start, end, script
    for path in sorted(directory.glob("tx.*")):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 6:
                end = int(fields[4]) * 1_000_000 + int(fields[5])
                rows.append((int(fields[0]), int(fields[1]), end - int(fields[2]), end,
                             int(fields[3])))
    if not rows:
        return Samples([], 0.0)
    warm_ends = [row[3] for row in rows if row[1] == warmup - 1]
    since = max(warm_ends) if warmup > 0 and warm_ends else min(row[2] for row in rows)
    latencies = [(end - start) / 1000.0 for _, tx, start, end, number in rows
                 if tx >= warmup and start >= since and script in (None, number)]
    return Samples(latencies, (max(row[3] for row in rows) - since) / 1e6)


def run(kind: str, **options: Any) -> Samples:
    """Run pgbench once on one script (``kind``, a key of SCRIPTS); see ``run_mixed``."""
    return run_mixed((kind,), **options)[kind]


def run_mixed(kinds: Sequence[str], *, host: str, port: int, database: str, user: str,
              clients: int, seconds: int, n_users: int, prefix: str, warmup: int,
              timeout: float) -> dict[str, Samples]:
    """Run pgbench once on the scripts ``kinds`` (keys of SCRIPTS) and return each one's
    warm latencies.

    With several scripts, pgbench draws one of them at random (equal weights) for every
    transaction, so each script's latencies come from the same seconds of the same run.
    Their requests/s then share the run's time and compare nothing.

    Parameters
    ----------
    clients
        Concurrent connections, each running the scripts back to back for ``seconds``.
    seconds
        pgbench's ``--time``: whole seconds, at least 1.
    warmup
        Transactions per client left out of the figures (the first one loads the model).
    timeout
        Hard bound on the pgbench process, in seconds.
    """
    if seconds < 1:
        raise ValueError("pgbench runs for whole seconds, at least 1")
    with tempfile.TemporaryDirectory(prefix="blink-pgbench-") as tmp:
        workdir = Path(tmp)
        files = []
        for kind in kinds:
            script = workdir / f"{kind}.sql"
            script.write_text("\\set uid random(0, :n_users - 1)\n"
                              + SCRIPTS[kind].format(prefix=prefix))
            files.append(f"--file={script}@1")
        argv = [
            pgbench_path(), "--no-vacuum", "--protocol=prepared", *files,
            f"--client={clients}", f"--jobs={min(clients, 2)}",
            f"--time={seconds}", "--log", f"--log-prefix={workdir / 'tx'}",
            f"--define=n_users={n_users}",
            "-h", host, "-p", str(port), "-U", user, database,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              cwd=workdir, env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
        if done.returncode != 0:
            raise RuntimeError(f"pgbench {' + '.join(kinds)} failed ({done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        return {kind: read_logs(workdir, warmup, script=number)
                for number, kind in enumerate(kinds)}
