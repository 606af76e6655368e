"""The processes a chaos run starts, and may kill, restart or flush: its own
PostgreSQL and Redis (never the machine's shared ones), gunicorn with two
workers, two `disburse worker` RQ workers and one REST partner simulator per
partner, each with its journal. Every process runs in a session of its own
so that a kill takes its whole group; `Stack.close` stops everything it
started, whatever happened (it is also registered with atexit)."""
from __future__ import annotations

import atexit
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from redis import Redis

from disbursement.demo import free_port
from tests.support import services
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "chaos"
READY_SECONDS = 60.0
STOP_SECONDS = 10.0
PG_RESTART_SECONDS = 120


class StackError(RuntimeError):
    """Raised when a process of the stack does not start or come back."""


@dataclass
class Proc:
    """One child process (the leader of its own process group) and how to start it again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    ready: str                        # "line": waits for `ready on`; "http:<url>": polls it
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    groups: list[int] = field(default_factory=list)

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.ready == "line" else log, stderr=log,
                start_new_session=True)
        self.starts += 1
        self.groups.append(self.popen.pid)      # leader of a new session and group
        if self.ready == "line":
            self._wait_ready_line()
        elif self.ready.startswith("http:"):
            url = self.ready.removeprefix("http:")
            wait_until(lambda: self._answers(url), f"{self.name} answers {url}",
                       timeout=READY_SECONDS, interval=0.2)

    def _wait_ready_line(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], READY_SECONDS)
        line = self.popen.stdout.readline().decode() if ready else ""
        if not line.startswith("ready on"):
            raise StackError(f"{self.name} did not start ({line!r}); see {self.log}")

    def _answers(self, url: str) -> bool:
        if not self.alive():
            raise StackError(f"{self.name} exited; see {self.log}")
        try:
            return httpx.get(url, timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL to the process only, as the OOM killer or an operator's
        kill -9 does: what it forked lives on (see `orphans`)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.wait()
        self._release()

    def orphans(self) -> list[int]:
        """Processes left alive in the groups of earlier, killed runs of this one."""
        current = self.popen.pid if self.popen is not None else None
        return [pid for group in self.groups if group != current
                for pid in _group_members(group)]

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL after STOP_SECONDS."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        # Whatever it or an earlier, killed run left in their groups goes too.
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self._release()

    def _release(self) -> None:
        if self.popen is not None and self.popen.stdout is not None:
            self.popen.stdout.close()

    def children(self) -> list[int]:
        """Direct children (gunicorn's workers under its master)."""
        if not self.alive():
            return []
        assert self.popen is not None
        path = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []


@dataclass
class Stack:
    work: Path
    pg: dict = field(default_factory=dict)
    redis: dict = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    closed: bool = False
    synchronous_commit: str = ""

    # -- servers ------------------------------------------------------------

    def start_servers(self) -> tuple[str, str]:
        """Our own PostgreSQL and Redis; returns (database URL, Redis URL)."""
        self.pg = services.start_private_postgres(DATABASE)
        # The test servers run with synchronous_commit off, on their command
        # line. A crash of PostgreSQL (immediate restart) would then lose
        # commits it acknowledged, which no production server does: restart
        # with it on (the default). fsync and full-page writes stay off: only
        # processes die here, never the machine.
        options = (f"-p {self.pg['port']} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.pg['dir']} -c fsync=off "
                   "-c full_page_writes=off -c max_connections=200")
        self.restart_postgres("fast", options)
        self.synchronous_commit = self.show("synchronous_commit")
        if self.synchronous_commit != "on":
            raise StackError(f"synchronous_commit is {self.synchronous_commit}, not on")
        self.redis = services.start_private_redis()
        return (f"postgresql+psycopg://postgres@127.0.0.1:{self.pg['port']}/{DATABASE}",
                f"redis://127.0.0.1:{self.redis['port']}/0")

    def show(self, setting: str) -> str:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.pg['port']}/postgres",
                             autocommit=True) as conn:
            row = conn.execute(f"SHOW {setting}").fetchone()
        return str(row[0]) if row else ""

    def restart_postgres(self, mode: str, options: str | None = None) -> None:
        """pg_ctl restart -m fast|immediate: every connection is cut. Without
        `options`, the server keeps those it was started with."""
        services._run(services._as_pg_user(
            [self.pg["pg_ctl"], "-D", self.pg["datadir"], "-l", self.pg["logfile"], "-m", mode,
             *(["-o", options] if options else []),
             "-w", "-t", str(PG_RESTART_SECONDS), "restart"]),
            cwd=self.pg["dir"], timeout=PG_RESTART_SECONDS + 30)
        self.pg["pid"] = services._read_postmaster_pid(self.pg["datadir"])

    def flush_redis(self) -> None:
        with Redis(host="127.0.0.1", port=self.redis["port"]) as connection:
            connection.flushall()

    # -- processes ----------------------------------------------------------

    def add(self, proc: Proc) -> Proc:
        self.procs[proc.name] = proc
        started = time.monotonic()
        proc.start()
        print(f"[chaos] {proc.name} up in {time.monotonic() - started:.1f}s", file=sys.stderr,
              flush=True)
        return proc

    def gunicorn(self, env: dict[str, str], port: int) -> Proc:
        argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.conf.py"),
                "--workers", "2", "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null",
                "disbursement.web.wsgi:app"]
        return self.add(Proc("gunicorn", argv, env, self.work / "gunicorn.log",
                             f"http:http://127.0.0.1:{port}/healthz"))

    def worker(self, env: dict[str, str], number: int) -> Proc:
        argv = [sys.executable, "-m", "disbursement.cli", "worker"]
        return self.add(Proc(f"worker-{number}", argv, env,
                             self.work / f"worker-{number}.log", "none"))

    def simulator(self, code: str, port: int, callback_url: str, key: str, seed: int,
                  args: list[str]) -> Proc:
        env = {**os.environ, f"PARTNER_{code}_HMAC_KEY": key}
        argv = [sys.executable, "-m", "connectors.simulators.rest", "--port", str(port),
                "--partner", code, "--callback-url", callback_url, "--seed", str(seed),
                "--journal", str(self.journal(code)), *args]
        return self.add(Proc(f"partner-{code}", argv, env, self.work / f"partner-{code}.log",
                             "line"))

    def journal(self, code: str) -> Path:
        return self.work / "journals" / f"{code}.jsonl"

    def close(self) -> None:
        """Stops every process and server started here; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        for proc in reversed(list(self.procs.values())):
            with contextlib.suppress(Exception):
                proc.stop()
        for info in (self.redis, self.pg):
            if info:
                with contextlib.suppress(Exception):
                    services.stop_one(info)


@contextlib.contextmanager
def open_stack(work: Path) -> Iterator[Stack]:
    """A stack closed on the way out, also on Ctrl-C, on SIGTERM (which unwinds
    like Ctrl-C while the stack is open) and at exit."""
    stack = Stack(work)
    atexit.register(stack.close)

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield stack
    finally:
        stack.close()
        signal.signal(signal.SIGTERM, previous)
        atexit.unregister(stack.close)


def _group_members(group: int) -> list[int]:
    """Live processes whose process group is `group` (from /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command: state, ppid, pgrp
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def wait_for(predicate, seconds: float, interval: float = 0.5) -> bool:
    """Polls `predicate` until it holds (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
