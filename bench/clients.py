"""A small bounded load generator in Python: N threads, one connection each, random users.

Used for the HTTP microservice and, so that the comparison is like for like, for
``blink_score`` through psycopg with the very same loop. Every run stops at a deadline or at
a request budget, whichever comes first.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg

from bench.stats import Samples


class Session(Protocol):
    """One client connection: ``call(user_id)`` makes one request; ``close()`` ends it."""

    def call(self, user_id: str) -> Any: ...

    def close(self) -> None: ...


class SqlSession:
    """``SELECT blink_score($1)`` as a prepared statement over one psycopg connection."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)

    def call(self, user_id: str) -> Any:
        row = self.conn.execute("SELECT blink_score(%s)", [user_id], prepare=True).fetchone()
        if row is None or row[0] is None:
            raise RuntimeError(f"blink_score({user_id!r}) returned no score")
        return row[0]

    def close(self) -> None:
        self.conn.close()


class HttpSession:
    """``GET /score/<user>`` over one keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, user_id: str) -> Any:
        self.conn.request("GET", f"/score/{user_id}")
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"microservice answered {response.status}: {body[:200]!r}")
        return json.loads(body)["probability_default"]

    def close(self) -> None:
        self.conn.close()


def run(make_session: Callable[[], Session], *, clients: int, seconds: float,
        max_requests: int, warmup: int, user_ids: list[str], seed: int) -> Samples:
    """Drive ``clients`` threads against fresh sessions and return the timed latencies.

    Each thread opens its session and makes ``warmup`` untimed calls first; then all threads
    start together (the clock starts once the last one is warm) and call back to back until
    ``seconds`` pass or ``max_requests`` requests (over all threads) are done.
    """
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    budget = threading.Semaphore(max_requests)
    clock = time.perf_counter
    window = [0.0, 0.0]  # start, deadline: set when the last thread is warm

    def start_clock() -> None:  # run by the barrier once everyone arrived, before any leaves
        window[0] = clock()
        window[1] = window[0] + seconds

    ready = threading.Barrier(clients + 1, action=start_clock)

    def worker(index: int) -> None:
        rng = random.Random(seed + index)
        session = None
        try:
            session = make_session()
            for _ in range(warmup):
                session.call(user_ids[rng.randrange(len(user_ids))])
        except BaseException as exc:  # reported after the run
            errors.append(exc)
        try:
            ready.wait(timeout=120)
        except threading.BrokenBarrierError:
            return
        if session is None:
            return
        mine = latencies[index]
        try:
            while clock() < window[1] and budget.acquire(blocking=False):
                user_id = user_ids[rng.randrange(len(user_ids))]
                start = clock()
                session.call(user_id)
                mine.append((clock() - start) * 1000.0)
        except BaseException as exc:
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=120)
    for thread in threads:
        thread.join(timeout=seconds + 60)
    elapsed = clock() - window[0]
    if errors:
        raise RuntimeError(f"{len(errors)} client error(s); first: {errors[0]!r}") from errors[0]
    return Samples([x for per_client in latencies for x in per_client], elapsed)
