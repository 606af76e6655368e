"""gunicorn settings for production:
`gunicorn -c config/gunicorn.conf.py disbursement.web.wsgi:app`.
Every value can be overridden from the environment (GUNICORN_*)."""
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers: requests are short database transactions; scale with processes.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))   # large registry uploads
graceful_timeout = 30
keepalive = 5
max_requests = 10_000          # recycle workers to bound memory growth
max_requests_jitter = 1_000
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
# Never log query strings or bodies: they may carry personal data.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'

# --- Prometheus multiprocess mode (observability, issue 5) ---------------------
# Each worker writes its metrics to files in PROMETHEUS_MULTIPROC_DIR and
# /metrics sums every process's files. Set here, in the master, before any
# worker imports prometheus_client (which reads it once, at import). RQ workers
# (`disburse worker`) on this machine must get the same directory so their job
# counters appear in /metrics too.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    from disbursement.settings import default_metrics_dir

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(default_metrics_dir(os.environ))


def on_starting(server):
    """Wipes the files of processes that no longer run, so counters restart
    with the server; files of live processes (RQ workers started before this
    gunicorn) are kept, or their counts would vanish until they restart."""
    from pathlib import Path

    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if not (pid.isdigit() and _alive(int(pid))):
            path.unlink(missing_ok=True)


def child_exit(server, worker):
    """A dead worker's live gauges must stop counting; its counters stay summed."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
