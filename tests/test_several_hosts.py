"""Several hosts, for real: two app instances (real gunicorn) share one PostgreSQL and
one Redis, behind a real load balancer (HAProxy, round-robin, health-checked on
/readyz), as the README's "Several servers" section tells operators to run them.

What the tests prove, through the balancer and host to host:
- a feedback token issued by one host is taken by the other, once;
- a feedback rate limit holds over both hosts together (counts are kept in Redis);
- PostgreSQL holds exactly the feedback that was accepted (201), whichever host took it;
- a rolling restart (HUP to one master, then the other) drops no request;
- a host killed outright (SIGKILL, master and workers) loses no new request: the
  balancer retries a refused connection on the live host.

Needs Debian's redis-server, haproxy and postgresql (`make test` installs them as root);
without them the tests fail in CI and skip elsewhere. Each instance runs one worker to
spare the machine's two cores. The order of the tests matters only for the last one,
which kills a host for good.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests
import sqlalchemy
from itsdangerous import URLSafeTimedSerializer

from classifier.settings import PROJECT_ROOT
from tests import images
from tests.conftest import ci_or_skip
from tests.servers import Server, free_port, gunicorn
from webapp.tokens import SALT

pytestmark = pytest.mark.slow

SECRET_KEY = "several hosts share this signing key"
LIMIT = 4  # feedback per minute and client, over all hosts together
PHOTO = images.jpeg(160, 120, seed=29)
TIMEOUT = 60  # for any one request: the machine may be busy with other work
HOSTS = ("host_a", "host_b")  # the balancer's names for the two instances


def program(name: str) -> str:
    """A Debian program's path (haproxy lives in /usr/sbin, outside a user's PATH)."""
    for path in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if path and os.access(path, os.X_OK):
            return path
    ci_or_skip(f"{name} is not installed (make test installs redis-server and haproxy as root)")


def wait_for(condition, timeout: float, what: str, interval: float = 0.05):
    """Poll until `condition()` is truthy and return it; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s")


def tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return f"--- {path.name}:\n" + "\n".join(text.splitlines()[-lines:])


# -- the shared services ---------------------------------------------------------------

@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port: no persistence, data in `folder`."""
    try:
        import redis
    except ImportError:
        ci_or_skip("the redis client is not installed (pip install -r requirements.txt)")
    port = free_port()
    log = folder / "redis.log"
    process = subprocess.Popen(
        [program("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder), "--logfile", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=5)

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"redis-server exited with {process.returncode}\n{tail(log)}")
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    try:
        wait_for(answers, 30, "redis-server answering PING")
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def database(maintenance_url: str) -> Iterator[str]:
    """A new, empty database on the test session's PostgreSQL server, migrated with the
    command operators run once per release (`flask --app app db upgrade`)."""
    url = sqlalchemy.make_url(maintenance_url).set(database="several_hosts")
    admin = sqlalchemy.create_engine(maintenance_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql("DROP DATABASE IF EXISTS several_hosts WITH (FORCE)")
        connection.exec_driver_sql("CREATE DATABASE several_hosts")
    text_url = url.render_as_string(hide_password=False)
    try:
        migrated = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=PROJECT_ROOT,
            env={**os.environ, "DATABASE_URL": text_url, "TF_CPP_MIN_LOG_LEVEL": "2"},
            capture_output=True, text=True, timeout=300)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        yield text_url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql("DROP DATABASE IF EXISTS several_hosts WITH (FORCE)")
        admin.dispose()


HAPROXY_CONFIG = """\
global
    stats socket {socket} mode 600 level user
    maxconn 256

defaults
    mode http
    timeout connect 2s
    timeout client {timeout}s
    timeout server {timeout}s
    timeout check 5s
    # A connection a host refuses (it died, or restarts) is tried again, on the other host.
    retries 3
    option redispatch 1
    # The client's address for the app's rate limits (NOTHOTDOG_TRUSTED_PROXIES=1).
    option forwardfor

frontend web
    bind 127.0.0.1:{port}
    default_backend app

backend app
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    # Which host answered, for the tests.
    http-response set-header X-Served-By %[srv_name]
    # /readyz runs every model (about 45 ms): checked each second, every 0.2 s while a
    # host is down or failing; one failed check takes it out, one good one back.
    default-server check inter 1s fastinter 200ms downinter 200ms fall 1 rise 1
{servers}
"""


@contextmanager
def haproxy(folder: Path, backends: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """HAProxy on a free loopback port, round-robin over `backends` (name: host:port);
    yields its address and its stats socket."""
    port, stats = free_port(), folder / "haproxy.sock"
    config = folder / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(
        socket=stats, port=port, timeout=TIMEOUT,
        servers="\n".join(f"    server {name} {address}" for name, address in backends.items())))
    binary = program("haproxy")
    checked = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log = folder / "haproxy.log"
    with open(log, "w") as output:
        process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=output,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: process.poll() is not None or stats.exists(), 30, "haproxy's stats socket")
        assert process.poll() is None, f"haproxy exited with {process.returncode}\n{tail(log)}"
        yield f"http://127.0.0.1:{port}", stats
    finally:
        process.terminate()
        process.wait(timeout=30)


def balancer_stats(stats: Path) -> dict[str, dict[str, str]]:
    """HAProxy's figures for each host (its `show stat`): status (UP, DOWN, ...),
    wretr and wredis (requests retried, redispatched to another host), ..."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(5)
        connection.connect(str(stats))
        connection.sendall(b"show stat\n")
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
    return {row["svname"]: row for row in rows if row["svname"] in HOSTS}


# -- the two hosts behind the balancer --------------------------------------------------

@dataclass
class Cluster:
    hosts: dict[str, Server]  # by the balancer's name
    balancer: str
    stats: Path
    database_url: str
    redis_url: str
    logs: Path
    accepted: list[str] = field(default_factory=list)  # token ids of every 201

    @property
    def a(self) -> Server:
        return self.hosts["host_a"]

    @property
    def b(self) -> Server:
        return self.hosts["host_b"]

    def states(self) -> dict[str, str]:
        return {name: row["status"] for name, row in balancer_stats(self.stats).items()}

    def counters(self, host: str) -> dict[str, int]:
        return {key: int(value) for key, value in balancer_stats(self.stats)[host].items()
                if key in ("wretr", "wredis", "econ", "eresp")}

    def wait_states(self, wanted: dict[str, str], timeout: float = 60) -> None:
        wait_for(lambda: self.states() == wanted, timeout, f"balancer seeing {wanted}")

    def diagnosis(self) -> str:
        return "\n".join(tail(path) for path in sorted(self.logs.glob("*.log")))


@pytest.fixture(scope="module")
def cluster(postgresql_url, tmp_path_factory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("several-hosts")
    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(folder))
        database_url = stack.enter_context(database(postgresql_url))
        hosts = {}
        for name in HOSTS:  # both start at once; each loads its models in its own worker
            metrics = folder / f"metrics-{name}"
            metrics.mkdir()
            hosts[name] = stack.enter_context(gunicorn(workers=1, log=folder / f"{name}.log", env={
                "DATABASE_URL": database_url, "NOTHOTDOG_SECRET_KEY": SECRET_KEY,
                "NOTHOTDOG_RATELIMIT_STORAGE": redis_url,
                "NOTHOTDOG_FEEDBACK_LIMIT": f"{LIMIT} per minute",
                "NOTHOTDOG_TRUSTED_PROXIES": "1", "PROMETHEUS_MULTIPROC_DIR": str(metrics)}))
        for name, server in hosts.items():
            try:
                server.wait_ready(workers=1, timeout=180)
            except RuntimeError as exc:
                raise AssertionError(f"{name}: {exc}\n{tail(folder / f'{name}.log')}") from None
        balancer, stats = stack.enter_context(haproxy(
            folder, {name: server.base.removeprefix("http://") for name, server in hosts.items()}))
        found = Cluster(hosts, balancer, stats, database_url, redis_url, folder)
        found.wait_states(dict.fromkeys(HOSTS, "UP"))
        yield found


@pytest.fixture()
def fresh_limits(cluster):
    """Every test starts with no feedback counted against the client (Redis emptied)."""
    import redis

    with redis.Redis.from_url(cluster.redis_url, socket_timeout=5) as client:
        client.flushdb()


def token_id(token: str) -> str:
    """The random id a feedback token carries (the database's unique key for it)."""
    return URLSafeTimedSerializer(SECRET_KEY, salt=SALT).loads(token)["j"]


def classify(base: str, session: requests.Session | None = None) -> tuple[str, str | None]:
    """Classify the photo at `base`: its feedback token, and which host answered (known
    only through the balancer)."""
    response = (session or requests).post(base + "/api/v1/classify", data=PHOTO,
                                          headers={"Content-Type": "image/jpeg"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["results"][0]["feedback_token"], response.headers.get("X-Served-By")


def send_feedback(cluster: Cluster, base: str, token: str) -> requests.Response:
    response = requests.post(base + "/api/v1/feedback", json={"token": token, "correct": True},
                             timeout=TIMEOUT)
    assert response.status_code in (201, 409, 429), response.text  # never a 5xx
    if response.status_code == 201:
        cluster.accepted.append(token_id(token))
    return response


# -- the tests ---------------------------------------------------------------------------

def test_a_token_from_one_host_is_taken_by_the_other(cluster, fresh_limits):
    a, b = cluster.a.base, cluster.b.base
    (from_a, _), (from_b, _) = classify(a), classify(b)
    assert send_feedback(cluster, b, from_a).status_code == 201
    assert send_feedback(cluster, a, from_b).status_code == 201
    # Taken once, whichever host it comes back to: the database knows it was used.
    used = send_feedback(cluster, a, from_a)
    assert used.status_code == 409 and used.json()["error"]["code"] == "token_used"

    # Through the balancer: round-robin sends the feedback to the other host.
    token, classified_by = classify(cluster.balancer)
    response = send_feedback(cluster, cluster.balancer, token)
    assert response.status_code == 201
    assert {classified_by, response.headers["X-Served-By"]} == set(HOSTS)


def test_a_rate_limit_holds_over_both_hosts(cluster, fresh_limits):
    """4 a minute: two per host would pass, were the counts each host's own."""
    tokens = [classify(cluster.balancer)[0] for _ in range(LIMIT + 1)]
    hosts = [cluster.a.base, cluster.b.base, cluster.a.base, cluster.b.base, cluster.a.base]
    codes = [send_feedback(cluster, host, token).status_code
             for host, token in zip(hosts, tokens, strict=True)]
    assert codes == [201] * LIMIT + [429]
    # The other host refuses too, for a token never used.
    refused = send_feedback(cluster, cluster.b.base, classify(cluster.a.base)[0])
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) > 0

    # The same through the balancer, which alternates between the hosts.
    import redis

    with redis.Redis.from_url(cluster.redis_url, socket_timeout=5) as client:
        client.flushdb()
    tokens = [classify(cluster.balancer)[0] for _ in range(LIMIT + 1)]
    answers = [send_feedback(cluster, cluster.balancer, token) for token in tokens]
    assert [answer.status_code for answer in answers] == [201] * LIMIT + [429]
    served = [answer.headers["X-Served-By"] for answer in answers]
    assert all(first != second for first, second in itertools.pairwise(served)), served


def test_postgresql_holds_exactly_the_accepted_feedback(cluster, fresh_limits):
    """Two hosts take one token at the same moment: the database keeps one of them. In
    the end its rows are exactly the feedback answered 201, by either host."""
    hosts = (cluster.a.base, cluster.b.base)
    for _ in range(LIMIT // 2):  # each round sends 2 feedbacks: LIMIT in all
        token, _ = classify(cluster.balancer)
        start, codes = threading.Barrier(2), []

        def race(host, token=token, start=start, codes=codes):
            start.wait(timeout=TIMEOUT)
            codes.append(send_feedback(cluster, host, token).status_code)

        threads = [threading.Thread(target=race, args=(host,)) for host in hosts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=2 * TIMEOUT)
        assert sorted(codes) == [201, 409]
    assert send_feedback(cluster, hosts[0], classify(hosts[1])[0]).status_code == 429

    engine = sqlalchemy.create_engine(cluster.database_url)
    try:
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT token_id FROM feedback").scalars().all()
    finally:
        engine.dispose()
    assert len(stored) == len(cluster.accepted)
    assert sorted(stored) == sorted(cluster.accepted)


class Client(threading.Thread):
    """Classifies through the balancer, one request after another, until stopped (or for
    `limit` seconds at most): each answer's status and host, or the error. With
    `keep_alive` it keeps its connection to the balancer, else it opens one per request."""

    def __init__(self, balancer: str, keep_alive: bool, limit: float = 300):
        super().__init__(daemon=True)
        self.balancer, self.keep_alive, self.limit = balancer, keep_alive, limit
        self.answers: list[tuple[int | str, str | None]] = []
        self.stop = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.limit
        with requests.Session() as session:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    response = session.post(self.balancer + "/api/v1/classify", data=PHOTO,
                                            headers={"Content-Type": "image/jpeg"}, timeout=TIMEOUT)
                    self.answers.append((response.status_code, response.headers.get("X-Served-By")))
                except requests.RequestException as exc:
                    self.answers.append((type(exc).__name__, None))
                if not self.keep_alive:
                    session.close()


def test_a_rolling_restart_drops_no_request(cluster):
    """HUP to one master, then (once the balancer has it back) to the other, while two
    clients keep classifying through the balancer: every answer is a 200."""
    clients = [Client(cluster.balancer, keep_alive=True), Client(cluster.balancer, keep_alive=False)]

    def answers(host: str | None = None) -> list:
        return [answer for client in clients for answer in client.answers
                if host is None or answer[1] == host]

    for client in clients:
        client.start()
    try:
        wait_for(lambda: len(answers()) >= 10, 120, "the clients' first answers")
        for name, server in cluster.hosts.items():
            old = server.workers()[0].pid
            server.process.send_signal(signal.SIGHUP)
            assert server.wait_replaced(old, workers=1, timeout=120) is not None, cluster.diagnosis()
            server.wait_ready(workers=1, timeout=120)
            cluster.wait_states(dict.fromkeys(HOSTS, "UP"))
            # The restarted host is answering the balancer's traffic again.
            before = len(answers(name))
            wait_for(lambda name=name, before=before: len(answers(name)) > before, 120,
                     f"{name} answering through the balancer after its restart")
    finally:
        for client in clients:
            client.stop.set()
        for client in clients:
            client.join(timeout=2 * TIMEOUT)
    failures = [answer for answer in answers() if answer[0] != 200]
    assert not failures, f"{len(failures)} of {len(answers())} failed: {failures[:5]}"
    assert all(answers(name) for name in HOSTS)


def refuses_connections(address: str) -> bool:
    host, port = address.removeprefix("http://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_killed_host_loses_no_new_request(cluster):
    """SIGKILL to one host's master and workers (no goodbye): every request sent after
    it is answered by the other host. Runs last: the cluster keeps one host."""
    victim = cluster.b
    processes = [psutil.Process(victim.process.pid), *victim.workers()]
    for process in processes:
        process.send_signal(signal.SIGKILL)
    wait_for(lambda: refuses_connections(victim.base), 30, "the killed host's port closing",
             interval=0.001)
    # At once, most likely before a health check has noticed: the balancer sends a
    # request to the dead host, is refused, and retries it on the live one.
    unnoticed = cluster.states()["host_b"] == "UP"
    with requests.Session() as session:
        served = [classify(cluster.balancer, session)[1] for _ in range(20)]
    assert served == ["host_a"] * 20
    if unnoticed:  # then some request met the dead host and went to the other one
        assert cluster.counters("host_b")["wredis"] > 0, cluster.counters("host_b")
    cluster.wait_states({"host_a": "UP", "host_b": "DOWN"}, timeout=30)
    psutil.wait_procs(processes, timeout=30)
