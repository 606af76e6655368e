"""Floors: what this machine does with no application code in the way.

Our own figures (bench/cycle.py and friends) are held against these, measured in the
same run on the same machine (DESIGN.md, "Speed rules"; on the 2-core reference machine:
COPY ~240k rows/s, batched executemany ~70k rows/s, trivial endpoint ~5k req/s).

    python -m bench.floor [--rows N] [--executemany-rows N] [--seconds S] [--json-out F]

Prints one JSON object. The database is TEST_DATABASE_URL, else DATABASE_URL (when it
is PostgreSQL), else postgresql://postgres@127.0.0.1:5432/test; `make bench` points it at
a server that answers (tests/support/services.py ensure).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
EXPECTED = {  # DESIGN.md, "Speed rules": the reference machine's figures
    "copy_rows_per_s": 240_000,
    "executemany_rows_per_s": 70_000,
    "trivial_endpoint_req_per_s": 5_000,
}
STATUSES = ("queued", "sent", "available", "paid")


def log(msg: str) -> None:
    print(f"[floor] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- database

def database_url_from_env() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        cand = os.environ.get("DATABASE_URL", "")
        url = cand if cand.startswith("postgres") else DEFAULT_DATABASE_URL
    return url


def libpq_url(url: str) -> str:
    """SQLAlchemy-style postgresql+psycopg://... -> postgresql://... for psycopg."""
    u = urlsplit(url)
    scheme = u.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return urlunsplit(("postgresql", *u[1:]))


def _rows(n: int):
    for i in range(n):
        yield (i, f"T{i:015d}", 100 + (i * 7919) % 5_000_000, STATUSES[i & 3])


_TABLE = "(id bigint, ref text, amount bigint, status text)"


def _scratch_table(conn, stem: str, temp: bool) -> str:
    """A scratch table: TEMP (no WAL, like the brief's floor) or an ordinary, WAL-logged
    table like the ones our imports fill (dropped again by the caller)."""
    name = stem if temp else f"{stem}_{os.getpid()}"
    if not temp:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE {'TEMP ' if temp else ''}TABLE {name} {_TABLE}")
    conn.commit()
    return name


def measure_copy_rate(database_url: str, rows: int = 1_000_000, *, temp: bool = True) -> float:
    """Rows/s of COPY FROM STDIN (psycopg 3 cursor.copy, rows made in Python) into a
    temp table (or, temp=False, an ordinary WAL-logged table), commit included."""
    import psycopg

    with psycopg.connect(libpq_url(database_url)) as conn:
        table = _scratch_table(conn, "floor_copy", temp)
        try:
            t0 = time.perf_counter()
            copy_sql = f"COPY {table} (id, ref, amount, status) FROM STDIN"
            with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in _rows(rows):
                    copy.write_row(row)
            conn.commit()
            elapsed = time.perf_counter() - t0
            (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            if count != rows:
                raise RuntimeError(f"COPY wrote {count} rows, expected {rows}")
        finally:
            conn.rollback()
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.commit()
    return rows / elapsed


def measure_executemany_rate(database_url: str, rows: int = 100_000, *,
                             temp: bool = True) -> float:
    """Rows/s of one executemany of INSERTs in psycopg 3 pipeline mode into a temp table
    (or, temp=False, an ordinary table), commit included."""
    import psycopg

    with psycopg.connect(libpq_url(database_url)) as conn:
        table = _scratch_table(conn, "floor_em", temp)
        try:
            t0 = time.perf_counter()
            with conn.pipeline(), conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {table} (id, ref, amount, status) VALUES (%s, %s, %s, %s)",
                    _rows(rows),
                )
            conn.commit()
            elapsed = time.perf_counter() - t0
            (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            if count != rows:
                raise RuntimeError(f"executemany wrote {count} rows, expected {rows}")
        finally:
            conn.rollback()
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.commit()
    return rows / elapsed


# --------------------------------------------------------------------------- HTTP

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_ok(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/")
        resp = conn.getresponse()
        ok = resp.status == 200 and json.loads(resp.read()) == {"ok": True}
        conn.close()
        return ok
    except (OSError, ValueError, http.client.HTTPException):
        return False


def start_gunicorn(workers: int = 2) -> tuple[subprocess.Popen, int]:
    """gunicorn with `workers` sync workers serving bench.trivial_app on a free loopback port."""
    for _attempt in range(3):
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "sync",
             "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--chdir", REPO_ROOT,
             "bench.trivial_app:app"],
            stdin=subprocess.DEVNULL, cwd=REPO_ROOT, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if _get_ok(port):
                return proc, port
            time.sleep(0.1)
        stop_gunicorn(proc)
    raise RuntimeError("gunicorn did not come up")


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)  # the arbiter stops its workers
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own session: gunicorn and its workers
        proc.wait(timeout=5)


def _find_wrk(install: bool) -> str | None:
    wrk = shutil.which("wrk")
    if wrk or not install:
        return wrk
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
             "stderr": subprocess.DEVNULL, "env": env}
    try:
        log("wrk not found; trying apt-get install -y wrk")
        cmd = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
        if subprocess.run(cmd, timeout=600, **quiet).returncode != 0:
            subprocess.run(["apt-get", "update"], timeout=600, **quiet)
            subprocess.run(cmd, timeout=600, **quiet)
    except (OSError, subprocess.SubprocessError) as exc:
        log(f"could not install wrk: {exc}")
    return shutil.which("wrk")


def _load_with_wrk(wrk: str, port: int, seconds: float, connections: int) -> dict:
    out = subprocess.run(
        [wrk, "-t", "2", "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
         f"http://127.0.0.1:{port}/"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=seconds + 60,
    ).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    errors = 0
    for pat in (r"Non-2xx or 3xx responses:\s+(\d+)",
                r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        em = re.search(pat, out)
        if em:
            errors += sum(int(g) for g in em.groups())
    total = re.search(r"(\d+) requests in", out)
    return {"req_per_s": float(m.group(1)), "requests": int(total.group(1)) if total else None,
            "errors": errors, "tool": "wrk", "connections": connections}


def _load_worker(port: int, seconds: float, max_requests: int, threads: int) -> dict:
    """Body of one load process: `threads` threads, each with a keep-alive http.client
    connection (reopened when the server closes it, as gunicorn's sync workers do)."""
    deadline = time.monotonic() + seconds
    per_thread = max(1, max_requests // threads)
    counts = [[0, 0] for _ in range(threads)]

    def run(slot: list[int]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while slot[0] + slot[1] < per_thread and time.monotonic() < deadline:
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                slot[0 if resp.status == 200 else 1] += 1
                if resp.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                slot[1] += 1
                conn.close()
        conn.close()

    t0 = time.perf_counter()
    ts = [threading.Thread(target=run, args=(c,), daemon=True) for c in counts]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 30)
    return {"ok": sum(c[0] for c in counts), "errors": sum(c[1] for c in counts),
            "elapsed": time.perf_counter() - t0}


def _load_with_python(port: int, seconds: float, processes: int, threads: int,
                      max_requests: int) -> dict:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.floor", "_load", str(port), str(seconds),
             str(max_requests // processes), str(threads)],
            cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
        )
        for _ in range(processes)
    ]
    results = [json.loads(p.communicate(timeout=seconds + 90)[0]) for p in procs]
    ok = sum(r["ok"] for r in results)
    elapsed = max(r["elapsed"] for r in results)
    return {"req_per_s": ok / elapsed, "requests": ok,
            "errors": sum(r["errors"] for r in results), "tool": "python-http.client",
            "connections": processes * threads}


def measure_trivial_endpoint(seconds: float = 5, *, install_wrk: bool = True,
                             max_requests: int = 2_000_000) -> dict:
    """Load the trivial app under gunicorn (2 sync workers) from another process; return
    {"req_per_s", "requests", "errors", "tool", "connections"}."""
    wrk = _find_wrk(install_wrk)
    proc, port = start_gunicorn(workers=2)
    try:
        if wrk:
            return _load_with_wrk(wrk, port, seconds, connections=8)
        log("wrk unavailable; using the Python load generator")
        return _load_with_python(port, seconds, processes=2, threads=4,
                                 max_requests=max_requests)
    finally:
        stop_gunicorn(proc)


def measure_trivial_endpoint_rate(seconds: float = 5) -> float:
    """Requests/s of a trivial Flask endpoint under gunicorn with 2 sync workers."""
    return measure_trivial_endpoint(seconds)["req_per_s"]


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_load":  # internal: one load-generator process
        port, seconds = int(argv[1]), float(argv[2])
        max_requests, threads = int(argv[3]), int(argv[4])
        print(json.dumps(_load_worker(port, seconds, max_requests, threads)))
        return 0

    ap = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--rows", type=int, default=1_000_000, help="COPY rows")
    ap.add_argument("--executemany-rows", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=5, help="HTTP load duration")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install wrk")
    ap.add_argument("--skip-db", action="store_true")
    ap.add_argument("--temp-only", action="store_true",
                    help="skip the second pass into an ordinary WAL-logged table")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--json-out", help="also write the result to this file")
    args = ap.parse_args(argv)

    db_url = args.database_url or database_url_from_env()
    u = urlsplit(db_url)
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                    "expected_on_reference_machine": EXPECTED}
    if not args.skip_db:
        import psycopg
        with psycopg.connect(libpq_url(db_url)) as conn:
            server = conn.execute("SHOW server_version").fetchone()[0]
            fsync = conn.execute("SHOW fsync").fetchone()[0]
        result["database"] = {"host": u.hostname, "port": u.port or 5432,
                              "server_version": server, "fsync": fsync}
        log(f"COPY {args.rows} rows into 127.0.0.1:{u.port or 5432}")
        result["copy_rows"] = args.rows
        result["copy_rows_per_s"] = round(measure_copy_rate(db_url, args.rows))
        log(f"executemany {args.executemany_rows} rows (pipeline mode)")
        result["executemany_rows"] = args.executemany_rows
        result["executemany_rows_per_s"] = round(
            measure_executemany_rate(db_url, args.executemany_rows))
        if not args.temp_only:
            log("the same two into an ordinary (WAL-logged) table")
            result["copy_logged_rows_per_s"] = round(
                measure_copy_rate(db_url, args.rows, temp=False))
            result["executemany_logged_rows_per_s"] = round(
                measure_executemany_rate(db_url, args.executemany_rows, temp=False))
    if not args.skip_http:
        log(f"trivial endpoint under gunicorn (2 sync workers), {args.seconds}s")
        http_res = measure_trivial_endpoint(args.seconds, install_wrk=not args.no_install)
        result["trivial_endpoint_req_per_s"] = round(http_res["req_per_s"])
        result["trivial_endpoint"] = http_res
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
