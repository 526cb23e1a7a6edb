"""gunicorn settings for `gunicorn app:app`; each can be overridden from the environment."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Threads share one model copy per process; LiteRT releases the GIL while it computes,
# so a few threads keep both cores busy while others decode uploads.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# No preload: each worker loads (and warms up) its own interpreters after the fork.
preload_app = False
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so any slow leak can never grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
accesslog = os.environ.get("GUNICORN_ACCESS_LOG")  # unset: no access log
errorlog = "-"
# Uploads stay in memory; gunicorn's own temp files go to RAM-backed /dev/shm where present.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
