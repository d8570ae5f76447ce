"""A small bounded load generator in Python: N clients (threads or processes), one
connection each, random users.

Used for the HTTP microservice and, so that the comparison is like for like, for
``blink_score`` through psycopg with the very same loop. Every run stops at a deadline or at
a request budget, whichever comes first.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
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
        max_requests: int, warmup: int, user_ids: list[str], seed: int,
        processes: bool = False) -> Samples:
    """Drive ``clients`` clients against fresh sessions and return the timed latencies.

    Each client opens its session and makes ``warmup`` untimed calls first; then all clients
    start together (the clock starts once the last one is warm) and call back to back until
    ``seconds`` pass or ``max_requests`` requests (over all clients) are done.

    A client is a thread of this process, or with ``processes`` a process of its own (forked
    from this one, so ``make_session`` need not be picklable). Threads share one interpreter:
    at 16 clients on 2 cores they wait for each other's Python (the GIL) far longer than a
    0.2 ms query takes, so their latencies measure the client (docs/benchmarks.md, "The
    Python client's processes").
    """
    context: Any = multiprocessing.get_context("fork") if processes else None
    sync: Any = context if processes else threading  # Barrier, Semaphore: the same calls
    window: Any = context.RawArray("d", 2) if processes else [0.0, 0.0]  # start, deadline
    budget = sync.Semaphore(max_requests)
    clock = time.perf_counter  # CLOCK_MONOTONIC: one clock for every process of the machine
    limit = seconds + 180.0  # warm-up (the barrier waits 120 s) and the timed seconds

    def start_clock() -> None:  # run by the barrier once everyone arrived, before any leaves
        window[0] = clock()
        window[1] = window[0] + seconds

    ready = sync.Barrier(clients + 1, action=start_clock)

    def client(index: int) -> tuple[list[float], str | None]:
        """One client's timed latencies (ms) and its first error, if any."""
        rng = random.Random(seed + index)
        mine: list[float] = []
        try:
            session = make_session()
            for _ in range(warmup):
                session.call(user_ids[rng.randrange(len(user_ids))])
        except BaseException as exc:  # reported after the run
            return mine, repr(exc)
        finally:
            try:
                ready.wait(timeout=120)
            except threading.BrokenBarrierError:
                pass
        try:
            while clock() < window[1] and budget.acquire(False):
                user_id = user_ids[rng.randrange(len(user_ids))]
                start = clock()
                session.call(user_id)
                mine.append((clock() - start) * 1000.0)
        except BaseException as exc:
            return mine, repr(exc)
        finally:
            session.close()
        return mine, None

    outcomes: list[tuple[list[float], str | None] | None] = [None] * clients
    if processes:
        pipes = [context.Pipe(duplex=False) for _ in range(clients)]

        def in_process(index: int) -> None:
            try:
                pipes[index][1].send(client(index))
            finally:
                # Skip this process's finalizers: it holds copies of the parent's open
                # connections, and closing them here would end the parent's sessions.
                os._exit(0)

        workers: list[Any] = [context.Process(target=in_process, args=(i,), daemon=True)
                              for i in range(clients)]
    else:
        def in_thread(index: int) -> None:
            outcomes[index] = client(index)

        workers = [threading.Thread(target=in_thread, args=(i,), daemon=True)
                   for i in range(clients)]
    for worker in workers:
        worker.start()
    try:
        ready.wait(timeout=120)
    except threading.BrokenBarrierError:
        pass  # a client failed to start: its error comes below
    for index, worker in enumerate(workers):
        if processes and pipes[index][0].poll(limit):  # read before joining: pipes fill up
            outcomes[index] = pipes[index][0].recv()
        worker.join(timeout=limit)
    elapsed = clock() - window[0]
    errors = [f"client {i}: no answer within {limit:.0f} s" if outcome is None else outcome[1]
              for i, outcome in enumerate(outcomes) if outcome is None or outcome[1]]
    if errors:
        raise RuntimeError(f"{len(errors)} client error(s); first: {errors[0]}")
    return Samples([x for outcome in outcomes if outcome for x in outcome[0]], elapsed)
