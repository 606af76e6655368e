"""gunicorn settings for production: `gunicorn -c config/gunicorn.conf.py disbursement.web.wsgi:app`.
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
