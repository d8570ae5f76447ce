"""pgbench as the SQL load driver: custom scripts, random user ids, per-transaction logs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import partial
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


LogRow = tuple[int, int, int, int]  # client, transaction number, start_us, end_us


def parse_logs(directory: Path) -> list[LogRow]:
    """Every transaction of pgbench's per-transaction logs in ``directory``.

    A log line is ``client_id transaction_no time_us script_no epoch epoch_us``, the epoch
    being when the transaction ended.
    """
    rows: list[LogRow] = []
    for path in sorted(directory.glob("tx.*")):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 6:
                end = int(fields[4]) * 1_000_000 + int(fields[5])
                rows.append((int(fields[0]), int(fields[1]), end - int(fields[2]), end))
    return rows


def warm_samples(rows: list[LogRow], warmup: int,
                 keep: Callable[[int], bool] | None = None,
                 turn_of: Callable[[int], int] | None = None) -> Samples:
    """Latencies (ms) of ``rows``, counted once every client is warm.

    Each client's first ``warmup`` transactions are left out, and so is every transaction
    that started before the last client finished its warm-up: a backend's first
    ``blink_score`` loads the model, and while one backend does that the others' calls wait
    for the CPU. The timed window runs from that moment to the last transaction's end (the
    Python client does the same with a barrier). ``keep`` (of the transaction number) picks
    one side of an alternating run; the window is the whole run's either way, and
    ``turn_of`` (of the transaction number) records the turn each kept transaction ran in.
    """
    if not rows:
        return Samples([], 0.0)
    warm_ends = [end for _, tx, _, end in rows if tx == warmup - 1]
    since = max(warm_ends) if warmup > 0 and warm_ends else min(row[2] for row in rows)
    kept = [(tx, start, end) for _, tx, start, end in rows
            if tx >= warmup and start >= since and (keep is None or keep(tx))]
    return Samples([(end - start) / 1000.0 for _, start, end in kept],
                   (max(row[3] for row in rows) - since) / 1e6,
                   None if turn_of is None else [turn_of(tx) for tx, _, _ in kept])


def turn_of(transaction: int, block: int) -> int:
    """Which turn of ``block`` transactions of an alternating run (``alternating_script``)
    ran a transaction, from 0: even turns run the first side, odd ones the second
    (pgbench numbers each client's transactions from 0; the script's counter from 1)."""
    return (transaction + 1) // block


def block_of(transaction: int, block: int) -> int:
    """0 or 1: which side of an alternating run ran a transaction."""
    return turn_of(transaction, block) % 2


def alternating_script(first: str, second: str, block: int, prefix: str) -> str:
    """One pgbench script running ``first`` and ``second`` (keys of SCRIPTS) in turns of
    ``block`` transactions. A counter in the client's variables picks the side; pgbench
    logs no side, so ``block_of`` reads it back from the transaction number."""
    return ("\\set n :n + 1\n\\set uid random(0, :n_users - 1)\n"
            f"\\if (:n / {block}) % 2 = 0\n{SCRIPTS[first].format(prefix=prefix)}"
            f"\\else\n{SCRIPTS[second].format(prefix=prefix)}\\endif\n")


def run(kind: str, *, prefix: str, warmup: int, **options: Any) -> Samples:
    """Run pgbench once on the script ``kind`` (a key of SCRIPTS) and return its warm
    latencies; ``options`` are ``_run``'s."""
    text = "\\set uid random(0, :n_users - 1)\n" + SCRIPTS[kind].format(prefix=prefix)
    return warm_samples(_run(kind, text, **options), warmup)


def run_alternating(first: str, second: str, *, block: int, prefix: str, warmup: int,
                    **options: Any) -> tuple[Samples, Samples]:
    """Run pgbench once over ``first`` and ``second`` in turns of ``block`` transactions
    and return each side's warm latencies with their turns; ``options`` are ``_run``'s.

    Both sides come from the same seconds of the same run, so a change of the machine (where
    the scheduler puts client and backend, a noisy neighbour) reaches both alike. A turn is
    long enough that its calls find the caches holding its own work, not the other side's.
    The sides share the run's time, so their requests/s compare nothing.
    """
    rows = _run(f"{first} and {second}", alternating_script(first, second, block, prefix),
                define=["n=0"], **options)
    turns = partial(turn_of, block=block)
    return (warm_samples(rows, warmup, lambda tx: block_of(tx, block) == 0, turns),
            warm_samples(rows, warmup, lambda tx: block_of(tx, block) == 1, turns))


def _run(name: str, script_text: str, *, host: str, port: int, database: str, user: str,
         clients: int, seconds: int, n_users: int, timeout: float,
         define: list[str] | None = None) -> list[LogRow]:
    """Run pgbench once on ``script_text`` and return its logged transactions.

    Parameters
    ----------
    clients
        Concurrent connections, each running the script back to back for ``seconds``.
    seconds
        pgbench's ``--time``: whole seconds, at least 1.
    timeout
        Hard bound on the pgbench process, in seconds.
    define
        More ``name=value`` variables for the script (``n_users`` is always set).
    """
    if seconds < 1:
        raise ValueError("pgbench runs for whole seconds, at least 1")
    with tempfile.TemporaryDirectory(prefix="blink-pgbench-") as tmp:
        workdir = Path(tmp)
        script = workdir / "script.sql"
        script.write_text(script_text)
        argv = [
            pgbench_path(), "--no-vacuum", "--protocol=prepared",
            f"--file={script}", f"--client={clients}", f"--jobs={min(clients, 2)}",
            f"--time={seconds}", "--log", f"--log-prefix={workdir / 'tx'}",
            f"--define=n_users={n_users}", *(f"--define={d}" for d in define or []),
            "-h", host, "-p", str(port), "-U", user, database,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              cwd=workdir, env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
        if done.returncode != 0:
            raise RuntimeError(f"pgbench {name} failed ({done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        return parse_logs(workdir)
