"""BASELINE, not part of blink: the model-server architecture blink replaces.

A FastAPI + uvicorn service that loads the same LightGBM model, fetches a user's latest
snapshot from the same database with psycopg, scores it with LightGBM and returns JSON. It
exists only so ``make bench`` can compare ``SELECT blink_score(u)`` with a REST call made
the way the earlier designs made it. Run by :func:`serve` on 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DSN_ENV = "BLINK_BENCH_SERVICE_DSN"
MODEL_ENV = "BLINK_BENCH_SERVICE_MODEL"
LATEST_SNAPSHOT = (
    "SELECT features FROM blink.feature_store_snapshots WHERE user_id = %s "
    "ORDER BY snapshot_at DESC, id DESC LIMIT 1"
)


def create_app() -> Any:
    """The FastAPI app, configured from the environment (uvicorn ``--factory``)."""
    import lightgbm
    import numpy as np
    import psycopg
    from fastapi import FastAPI, HTTPException

    dsn = os.environ[DSN_ENV]
    booster = lightgbm.Booster(model_file=os.environ[MODEL_ENV])
    names = list(booster.feature_name())
    local = threading.local()  # one connection per worker thread of FastAPI's thread pool

    def connection() -> psycopg.Connection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(dsn, autocommit=True)
        return conn

    app = FastAPI(title="blink benchmark baseline: model microservice")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/score/{user_id}")
    def score(user_id: str) -> dict[str, Any]:
        row = connection().execute(LATEST_SNAPSHOT, [user_id], prepare=True).fetchone()
        if row is None:
            raise HTTPException(status_code=404, detail=f"no snapshot for user {user_id}")
        document = row[0]
        values = [document.get(name) for name in names]
        matrix = np.array([[math.nan if v is None else float(v) for v in values]])
        probability = float(booster.predict(matrix, num_threads=1)[0])
        return {"user_id": user_id, "probability_default": probability}

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/health")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


@contextmanager
def serve(dsn: str, model_file: Path, log_file: Path, timeout: float = 60.0) -> Iterator[int]:
    """Run the baseline under uvicorn (one worker process) on 127.0.0.1; yields its port."""
    port = _free_port()
    env = dict(os.environ, **{DSN_ENV: dsn, MODEL_ENV: str(model_file)})
    argv = [sys.executable, "-m", "uvicorn", "bench.microservice:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--log-level", "warning", "--no-access-log",
            # Clients wait at the barrier until every one is warm; uvicorn's default closes a
            # connection idle for 5 s, which dropped waiting clients on a starved machine.
            "--timeout-keep-alive", "300"]
    repo_root = Path(__file__).resolve().parent.parent
    with open(log_file, "wb") as log:
        process = subprocess.Popen(argv, cwd=repo_root, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the microservice baseline did not start; its log:\n"
                                   + log_file.read_text()[-2000:])
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
