#!/usr/bin/env python3
"""Make sure a real PostgreSQL and a real Redis answer for the tests and benchmarks.

Standard library only, so it runs before (or without) the virtualenv::

    python tests/support/services.py ensure   # probe, else start private servers
    python tests/support/services.py stop     # stop only what `ensure` started
    python tests/support/services.py status

`ensure()` probes the candidate URLs (env ``TEST_DATABASE_URL`` and
``TEST_REDIS_URL``, defaulting to the machine's usual services on 127.0.0.1).
Whatever does not answer is replaced by a private, throwaway server on a free
loopback port: a PostgreSQL cluster made with ``initdb`` in a temp dir (installed
with apt-get when the binaries are missing) and a ``redis-server`` with no
persistence. The machine's own services are never stopped or reconfigured.

The URLs in use are written to ``tests/.services.env`` (``KEY=value`` lines,
readable by ``set -a; . tests/.services.env``) and printed. What was started is
recorded in ``tests/.services.state.json`` so that ``stop`` stops exactly that.
"""
from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_FILE = os.path.join(TESTS_DIR, ".services.env")
STATE_FILE = os.path.join(TESTS_DIR, ".services.state.json")

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"

PG_OS_USER = "postgres"
START_TIMEOUT = 60.0


class ServiceError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[services] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- helpers

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _run(cmd, *, check=True, timeout=None, cwd=None, env=None, quiet=False):
    """Run a command with no stdin; return CompletedProcess (text)."""
    res = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=timeout, cwd=cwd, env=env,
    )
    if check and res.returncode != 0:
        raise ServiceError(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stdout}")
    if not quiet and res.returncode != 0:
        log(f"{' '.join(cmd)} -> {res.returncode}: {res.stdout.strip()[-400:]}")
    return res


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _pid_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


_apt_updated = False


def _apt_install(*packages: str) -> None:
    global _apt_updated
    if not shutil.which("apt-get"):
        raise ServiceError(f"cannot install {packages}: no apt-get on this machine")
    prefix: list[str] = []
    if not _is_root():
        if shutil.which("sudo"):
            prefix = ["sudo", "-n"]
        else:
            raise ServiceError(f"cannot install {packages}: not root and no sudo")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        log("apt-get update")
        _run([*prefix, "apt-get", "update"], env=env, timeout=900)
        _apt_updated = True
    log(f"apt-get install -y {' '.join(packages)}")
    _run([*prefix, "apt-get", "install", "-y", "--no-install-recommends",
          "-o", "Dpkg::Options::=--force-confdef",
          "-o", "Dpkg::Options::=--force-confold", *packages],
         env=env, timeout=1800)


# --------------------------------------------------------------------------- URLs

def _split_pg(url: str):
    u = urlsplit(url)
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port or 5432,
        "user": u.username or "postgres",
        "password": u.password,
        "dbname": (u.path or "/").lstrip("/") or "postgres",
    }


def _plain_pg_url(url: str) -> str:
    """postgresql+psycopg://... -> postgresql://... (for libpq / psycopg)."""
    u = urlsplit(url)
    return urlunsplit(("postgresql", *u[1:]))


def _with_dbname(url: str, dbname: str) -> str:
    u = urlsplit(url)
    return urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, u.fragment))


def _pg_url(scheme: str, user: str, port: int, dbname: str) -> str:
    return f"{scheme}://{user}@127.0.0.1:{port}/{dbname}"


def _split_redis(url: str):
    u = urlsplit(url)
    db = (u.path or "/").lstrip("/") or "0"
    return {"host": u.hostname or "127.0.0.1", "port": u.port or 6379,
            "password": u.password, "db": db, "scheme": u.scheme or "redis"}


# --------------------------------------------------------------------------- probes

def _psycopg():
    try:
        import psycopg  # type: ignore
        return psycopg
    except Exception:
        return None


def pg_answers(url: str, *, create_db: bool = True) -> bool:
    """True when a PostgreSQL at `url` accepts a real query on the named database.

    If the server answers but the database is missing, it is created
    (``create_db``) - the server itself is otherwise left alone.
    """
    p = _split_pg(url)
    if not _tcp_open(p["host"], p["port"]):
        return False
    psycopg = _psycopg()
    if psycopg is not None:
        try:
            with psycopg.connect(_plain_pg_url(url), connect_timeout=5) as conn:
                conn.execute("SELECT 1").fetchone()
            return True
        except Exception as exc:
            if create_db and "does not exist" in str(exc) and p["dbname"]:
                try:
                    admin = _plain_pg_url(_with_dbname(url, "postgres"))
                    with psycopg.connect(admin, connect_timeout=5, autocommit=True) as conn:
                        conn.execute(f'CREATE DATABASE "{p["dbname"]}"')
                    log(f"created database {p['dbname']!r} on {p['host']}:{p['port']}")
                    return pg_answers(url, create_db=False)
                except Exception as exc2:
                    log(f"could not create database {p['dbname']!r}: {exc2}")
            log(f"PostgreSQL at {p['host']}:{p['port']} not usable: {str(exc).strip()[:200]}")
            return False
    # no psycopg: use the client binaries
    pg_isready = shutil.which("pg_isready") or _find_pg_bin("pg_isready")
    if pg_isready:
        r = _run([pg_isready, "-h", p["host"], "-p", str(p["port"]), "-U", p["user"],
                  "-d", p["dbname"], "-t", "5"], check=False, quiet=True)
        if r.returncode != 0:
            return False
        psql = shutil.which("psql") or _find_pg_bin("psql")
        if not psql:
            return True
        env = dict(os.environ)
        if p["password"]:
            env["PGPASSWORD"] = p["password"]
        base = [psql, "-h", p["host"], "-p", str(p["port"]), "-U", p["user"], "-X", "-A", "-t",
                "-v", "ON_ERROR_STOP=1"]
        r = _run([*base, "-d", p["dbname"], "-c", "SELECT 1"], check=False, env=env, quiet=True)
        if r.returncode == 0:
            return True
        if create_db and "does not exist" in r.stdout:
            r2 = _run([*base, "-d", "postgres", "-c", f'CREATE DATABASE "{p["dbname"]}"'],
                      check=False, env=env, quiet=True)
            if r2.returncode == 0:
                log(f"created database {p['dbname']!r} on {p['host']}:{p['port']}")
                return pg_answers(url, create_db=False)
        log(f"PostgreSQL at {p['host']}:{p['port']} not usable: {r.stdout.strip()[:200]}")
        return False
    # last resort: speak just enough of the protocol (SSLRequest -> 'S' or 'N')
    try:
        with socket.create_connection((p["host"], p["port"]), timeout=3) as s:
            s.sendall((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
            return s.recv(1) in (b"S", b"N")
    except OSError:
        return False


def redis_answers(url: str) -> bool:
    """True when a Redis at `url` answers PING with +PONG (after AUTH if a password is set)."""
    r = _split_redis(url)
    if r["scheme"] not in ("redis",):
        # rediss:// (TLS) and unix sockets: trust a TCP connect only
        return _tcp_open(r["host"], r["port"])
    try:
        with socket.create_connection((r["host"], r["port"]), timeout=3) as s:
            s.settimeout(3)
            if r["password"]:
                pw = r["password"].encode()
                s.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw))
                if not s.recv(64).startswith(b"+OK"):
                    return False
            s.sendall(b"PING\r\n")
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(64)
                if not chunk:
                    break
                buf += chunk
            return buf.startswith(b"+PONG")
    except OSError:
        return False


# --------------------------------------------------------------------------- PostgreSQL

def _find_pg_bin(name: str) -> str | None:
    def ver(path: str):
        try:
            return float(path.split("/postgresql/")[1].split("/")[0])
        except (IndexError, ValueError):
            return 0.0
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=ver, reverse=True)
    if found:
        return found[0]
    # other layouts (e.g. a source build or another distribution)
    for cand in glob.glob(f"/usr/local/pgsql/bin/{name}") + glob.glob(f"/usr/pgsql-*/bin/{name}"):
        return cand
    # on Debian /usr/bin/initdb does not exist (pg_wrapper), elsewhere it may
    if name in ("initdb", "pg_ctl", "postgres"):
        w = shutil.which(name)
        if w:
            return w
    return None


def _ensure_pg_os_user() -> None:
    try:
        import pwd
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        log(f"creating OS user {PG_OS_USER!r} to run the private cluster")
        _run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", PG_OS_USER])


def _as_pg_user(cmd: list[str]) -> list[str]:
    """As root, PostgreSQL refuses to run: drop to the postgres OS user."""
    if not _is_root():
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", PG_OS_USER, "--", *cmd]
    import shlex
    return ["su", PG_OS_USER, "-s", "/bin/sh", "-c", " ".join(shlex.quote(c) for c in cmd)]


def _tmp_base() -> str:
    # as root the postgres user must be able to traverse the parents of the data dir
    return "/tmp" if _is_root() and os.path.isdir("/tmp") else tempfile.gettempdir()


def start_private_postgres(dbname: str = "test", user: str = "postgres") -> dict:
    initdb = _find_pg_bin("initdb")
    if not initdb:
        _apt_install("postgresql")
        initdb = _find_pg_bin("initdb")
        if not initdb:
            raise ServiceError("PostgreSQL installed but initdb not found")
    bindir = os.path.dirname(initdb)
    pg_ctl = os.path.join(bindir, "pg_ctl")
    if _is_root():
        _ensure_pg_os_user()

    tmp = tempfile.mkdtemp(prefix="disburse-pg-", dir=_tmp_base())
    datadir = os.path.join(tmp, "data")
    logfile = os.path.join(tmp, "postgres.log")
    info = {"kind": "postgres", "dir": tmp, "datadir": datadir, "pg_ctl": pg_ctl,
            "logfile": logfile, "pid": None, "port": None}
    try:
        if _is_root():
            import pwd
            pw = pwd.getpwnam(PG_OS_USER)
            os.chown(tmp, pw.pw_uid, pw.pw_gid)
        os.chmod(tmp, 0o700)
        log(f"initdb private PostgreSQL cluster in {datadir}")
        _run(_as_pg_user([initdb, "-D", datadir, "-U", user, "--auth=trust", "-E", "UTF8",
                          "--no-locale", "--no-sync"]), cwd=tmp, timeout=300)
        last_err = None
        for _attempt in range(3):  # a free port may be taken between probe and bind
            r = _pg_ctl_start(info, _free_port())
            if r.returncode == 0:
                break
            last_err = r.stdout + _tail(logfile)
        else:
            raise ServiceError(f"pg_ctl start failed:\n{last_err}")
        url = _pg_url("postgresql", user, info["port"], "postgres")
        _wait(lambda: pg_answers(url, create_db=False), "private PostgreSQL")
        createdb = os.path.join(bindir, "createdb")
        if dbname and dbname != "postgres":
            _run(_as_pg_user([createdb, "-h", "127.0.0.1", "-p", str(info["port"]),
                              "-U", user, dbname]), cwd=tmp)
        log(f"private PostgreSQL up on 127.0.0.1:{info['port']} (pid {info['pid']})")
        return info
    except BaseException:
        stop_one(info)
        raise


def _pg_ctl_start(info: dict, port: int):
    """Start the private cluster described by `info` on `port`; on success
    `info` holds the port and the postmaster's pid."""
    opts = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={info['dir']} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200")
    r = _run(_as_pg_user([info["pg_ctl"], "-D", info["datadir"], "-l", info["logfile"],
                          "-o", opts, "-w", "-t", str(int(START_TIMEOUT)), "start"]),
             cwd=info["dir"], check=False, timeout=START_TIMEOUT + 30)
    if r.returncode == 0:
        info["port"] = port
        info["pid"] = _read_postmaster_pid(info["datadir"])
    return r


def stop_private_postgres(info: dict, mode: str = "fast") -> None:
    """Stop a private cluster (`pg_ctl stop -m fast|immediate`), keeping its
    data for `restart_private_postgres`. Only ever a cluster this module started."""
    _run(_as_pg_user([info["pg_ctl"], "-D", info["datadir"], "-m", mode, "-w", "-t", "30",
                      "stop"]), cwd=info["dir"], timeout=60)


def restart_private_postgres(info: dict) -> None:
    """Start a cluster stopped by `stop_private_postgres` again, on its port."""
    r = _pg_ctl_start(info, info["port"])
    if r.returncode != 0:
        raise ServiceError(f"pg_ctl start failed:\n{r.stdout}{_tail(info['logfile'])}")
    url = _pg_url("postgresql", "postgres", info["port"], "postgres")
    _wait(lambda: pg_answers(url, create_db=False), "restarted private PostgreSQL")


def _read_postmaster_pid(datadir: str) -> int | None:
    try:
        with open(os.path.join(datadir, "postmaster.pid")) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def _tail(path: str, n: int = 3000) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


# --------------------------------------------------------------------------- Redis

def start_private_redis() -> dict:
    server = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if not server:
        _apt_install("redis-server")
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(server):
            raise ServiceError("redis-server installed but not found")
    tmp = tempfile.mkdtemp(prefix="disburse-redis-", dir=_tmp_base())
    pidfile = os.path.join(tmp, "redis.pid")
    logfile = os.path.join(tmp, "redis.log")
    info = {"kind": "redis", "dir": tmp, "pidfile": pidfile, "logfile": logfile,
            "pid": None, "port": None}
    try:
        last_err = None
        for _attempt in range(3):
            port = _free_port()
            r = _run([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--daemonize", "yes", "--pidfile", pidfile,
                      "--dir", tmp, "--logfile", logfile, "--protected-mode", "yes"],
                     check=False, timeout=30)
            if r.returncode == 0:
                url = f"redis://127.0.0.1:{port}/0"
                try:
                    _wait(functools.partial(redis_answers, url), "private Redis", timeout=20)
                except ServiceError as exc:
                    last_err = f"{exc}\n{_tail(logfile)}"
                    _kill_pid(_read_pidfile(pidfile, 0.5), "redis-server")
                    continue
                info["port"] = port
                info["pid"] = _read_pidfile(pidfile)
                break
            last_err = r.stdout + _tail(logfile)
        else:
            raise ServiceError(f"redis-server failed to start:\n{last_err}")
        log(f"private Redis up on 127.0.0.1:{info['port']} (pid {info['pid']})")
        return info
    except BaseException:
        stop_one(info)
        raise


def _read_pidfile(path: str, wait: float = 5.0) -> int | None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
    return None


# --------------------------------------------------------------------------- lifecycle

def _wait(pred, what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise ServiceError(f"{what} did not answer within {timeout:.0f}s")


def _kill_pid(pid: int | None, expect: str, timeout: float = 15.0) -> None:
    """SIGTERM `pid` if it is still the process we started, wait, then SIGKILL."""
    if not pid or not _pid_alive(pid) or expect not in _pid_cmdline(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop_one(info: dict) -> None:
    kind = info.get("kind")
    try:
        if kind == "postgres":
            datadir = info.get("datadir")
            pid = info.get("pid") or (datadir and _read_postmaster_pid(datadir))
            if datadir and os.path.exists(os.path.join(datadir, "postmaster.pid")):
                _run(_as_pg_user([info["pg_ctl"], "-D", datadir, "-m", "fast", "-w",
                                  "-t", "30", "stop"]), check=False, timeout=60,
                     cwd=info.get("dir"), quiet=True)
            _kill_pid(pid, "postgres")
        elif kind == "redis":
            pid = info.get("pid") or (info.get("pidfile") and _read_pidfile(info["pidfile"], 0.5))
            _kill_pid(pid, "redis-server")
    finally:
        d = info.get("dir")
        if d and os.path.basename(d).startswith(("disburse-pg-", "disburse-redis-")):
            shutil.rmtree(d, ignore_errors=True)


def _load_state() -> dict:
    try:
        with open(STATE_FILE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _save_state(state: dict) -> None:
    if state:
        tmp = STATE_FILE + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=2)
        os.replace(tmp, STATE_FILE)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(STATE_FILE)


def _write_env(urls: dict) -> None:
    tmp = ENV_FILE + ".tmp"
    with open(tmp, "w") as f:
        for k, v in urls.items():
            f.write(f"{k}={v}\n")
    os.replace(tmp, ENV_FILE)


def ensure(*, write: bool = True, verbose: bool = True) -> dict:
    """Return {"TEST_DATABASE_URL": ..., "TEST_REDIS_URL": ...} for servers that answer.

    Starts private servers for whatever does not answer; reuses private servers
    from an earlier `ensure` that was not stopped.
    """
    db_url = os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL
    state = _load_state()
    started: list[dict] = []
    try:
        # ---- PostgreSQL
        if pg_answers(db_url):
            state_pg = state.pop("postgres", None)
            if state_pg:
                stop_one(state_pg)
            final_db = db_url
        else:
            p = _split_pg(db_url)
            scheme = urlsplit(db_url).scheme or "postgresql+psycopg"
            prev = state.get("postgres")
            if prev and pg_answers(_pg_url("postgresql", p["user"], prev["port"], p["dbname"])):
                log(f"reusing private PostgreSQL on 127.0.0.1:{prev['port']}")
                info = prev
            else:
                if prev:
                    stop_one(state.pop("postgres"))
                log(f"PostgreSQL does not answer at {p['host']}:{p['port']}; "
                    "starting a private one")
                info = start_private_postgres(p["dbname"], p["user"])
                started.append(info)
                state["postgres"] = info
            final_db = _pg_url(scheme, p["user"], info["port"], p["dbname"])
        # ---- Redis
        if redis_answers(redis_url):
            state_r = state.pop("redis", None)
            if state_r:
                stop_one(state_r)
            final_redis = redis_url
        else:
            r = _split_redis(redis_url)
            prev = state.get("redis")
            if prev and redis_answers(f"redis://127.0.0.1:{prev['port']}/0"):
                log(f"reusing private Redis on 127.0.0.1:{prev['port']}")
                info = prev
            else:
                if prev:
                    stop_one(state.pop("redis"))
                log(f"Redis does not answer at {r['host']}:{r['port']}; starting a private one")
                info = start_private_redis()
                started.append(info)
                state["redis"] = info
            final_redis = f"redis://127.0.0.1:{info['port']}/{r['db']}"
    except BaseException:
        for info in started:
            stop_one(info)
            state.pop(info["kind"], None)
        _save_state(state)
        raise
    _save_state(state)
    urls = {"TEST_DATABASE_URL": final_db, "TEST_REDIS_URL": final_redis}
    if write:
        _write_env(urls)
    if verbose:
        for k, v in urls.items():
            print(f"{k}={v}", flush=True)
    return urls


def stop() -> None:
    """Stop only the private servers that `ensure` started (as recorded in the state file)."""
    state = _load_state()
    if not state:
        log("nothing to stop")
    for kind in ("redis", "postgres"):
        info = state.pop(kind, None)
        if info:
            log(f"stopping private {kind} on 127.0.0.1:{info.get('port')} (pid {info.get('pid')})")
            stop_one(info)
    _save_state(state)
    with contextlib.suppress(FileNotFoundError):
        os.remove(ENV_FILE)


def status() -> int:
    state = _load_state()
    for kind, info in state.items():
        alive = bool(info.get("pid")) and _pid_alive(info["pid"])
        print(f"private {kind}: 127.0.0.1:{info.get('port')} pid {info.get('pid')} "
              f"{'running' if alive else 'NOT running'}")
    if not state:
        print("no private services recorded")
    if os.path.exists(ENV_FILE):
        with open(ENV_FILE) as f:
            sys.stdout.write(f.read())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmd = argv[0] if argv else "ensure"
    try:
        if cmd == "ensure":
            ensure()
        elif cmd == "stop":
            stop()
        elif cmd == "status":
            return status()
        else:
            print(f"usage: {sys.argv[0]} [ensure|stop|status]", file=sys.stderr)
            return 2
    except ServiceError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
