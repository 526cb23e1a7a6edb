"""gunicorn settings for `gunicorn app:app`; each can be overridden from the environment."""

import os
import shutil
import tempfile

from gunicorn.workers.gthread import ThreadWorker

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"


class FairThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, keeping a connection alive after a response only while
    it holds no more connections than half its threads.

    Why: a kept-alive connection stays with the worker that accepted it, and whichever
    worker is awake when clients connect accepts them. Under 16 keep-alive connections,
    one of two workers held all 16 in two starts of four, and the machine served half
    the requests/s (127 against 238-249, 2-core AMD EPYC, bench/results/capacity.md).
    Past its share a worker closes connections after their response; the clients
    reconnect and the less busy worker, quicker to accept, takes them. Half the threads,
    not more: at twice the threads, 4 clients could still all sit on one worker (141
    against 259 requests/s). Idle connections still count up to worker_connections
    (1000): slow clients cannot lock workers out, they only cost others keep-alive."""

    @property
    def max_keepalived(self) -> int:
        if self.nr_conns > max(1, self.cfg.threads // 2):
            return 0
        return self._max_keepalived

    @max_keepalived.setter
    def max_keepalived(self, value: int) -> None:  # set by ThreadWorker.__init__
        self._max_keepalived = value


# Threads share one model copy per process; LiteRT releases the GIL while it computes,
# so a few threads keep both cores busy while others decode uploads.
worker_class = FairThreadWorker
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# No preload: each worker loads (and warms up) its own interpreters after the fork.
preload_app = False
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Workers are recycled when their memory has grown (post_request, below), not after a
# count of requests: at full load 2,000 requests came every 13 s, and each new worker
# loads and times every model again. GUNICORN_MAX_REQUESTS brings the count back.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = 200 if max_requests else 0
# A worker serving the shipped models holds about 150-170 MB between requests; one
# holding over this much after a request (a leak, or memory a request did not give
# back) finishes its requests and is replaced.
max_worker_rss_mb = float(os.environ.get("NOTHOTDOG_MAX_WORKER_RSS_MB", "600"))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG")  # unset: no access log
errorlog = "-"
# Uploads stay in memory; gunicorn's own temp files go to RAM-backed /dev/shm where present.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# One worker per core, each pinned to its own: a worker's interpreters (weights and
# activation buffers) then stay in that core's caches instead of following the
# scheduler's migrations - about 7 % more requests/s and a lower p99 in interleaved
# runs of bench/http_load.py on 2 cores. Pinned only when the workers exactly fill the
# usable cores (on a larger, shared host the scheduler knows better);
# GUNICORN_PIN_WORKERS=1 or 0 forces it on or off.
_usable_cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
_pin_setting = os.environ.get("GUNICORN_PIN_WORKERS", "")
pin_workers = bool(_usable_cores) and (
    _pin_setting == "1" or (_pin_setting == "" and workers == len(_usable_cores)))


def pre_fork(server, worker):
    """In the master: give the new worker a core no live worker holds (None if all are
    taken, as while a reload briefly runs old and new workers side by side)."""
    taken = {getattr(other, "core", None) for other in server.WORKERS.values()}
    free = [core for core in _usable_cores if core not in taken] if pin_workers else []
    worker.core = free[0] if free else None


def post_fork(server, worker):
    if worker.core is not None:
        os.sched_setaffinity(0, {worker.core})


# Prometheus metrics from every worker: prometheus-client's multiprocess mode keeps each
# worker's counts in files under PROMETHEUS_MULTIPROC_DIR, which must exist and be empty
# when the server starts. Unless the environment names one, the master makes a fresh
# folder before any worker is forked (the workers inherit the variable).
# A folder the master made is removed when it exits.
def on_starting(server):
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
    else:
        server.made_metrics_folder = tempfile.mkdtemp(prefix="nothotdog-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = server.made_metrics_folder


def on_exit(server):
    folder = getattr(server, "made_metrics_folder", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def post_request(worker, req, environ, resp):
    """Retire this worker, as gunicorn's max_requests does, once it holds more memory
    than max_worker_rss_mb after a request (a read of /proc/self/statm: microseconds)."""
    resident_mb = _resident_mb()
    if worker.alive and resident_mb > max_worker_rss_mb:
        worker.log.warning("worker %s holds %.0f MB after a request (the limit is %.0f MB, "
                           "NOTHOTDOG_MAX_WORKER_RSS_MB): replacing it", worker.pid,
                           resident_mb, max_worker_rss_mb)
        worker.alive = False


def _resident_mb() -> float:
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except OSError:  # not Linux: no memory-based recycling
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def post_worker_init(worker):
    """A new worker (the app loaded) folds the metrics files of dead workers into the
    archive files (`webapp.metrics.fold_dead_workers`): a replaced worker's counts stay,
    its files go, so /metrics does not read more files after every replacement."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        from webapp.metrics import fold_dead_workers

        try:
            fold_dead_workers(folder)
        except Exception:  # metrics files are not worth a worker: they stay, and count
            worker.log.exception("could not fold the metrics files of dead workers")


def child_exit(server, worker):
    """A dead worker's live gauges (the models it had loaded) stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
