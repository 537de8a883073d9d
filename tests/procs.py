"""Real processes to kill: ``vfr serve`` in its own process group and a private ``redis-server``.

Shared by the fault-injection tests (tests/serving/test_fault_injection.py) and their
full-size benchmark (benchmarks/api_faults.py), so both kill, wait and restart the same way.
Every wait raises :class:`RuntimeError` with a one-line reason when it times out.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SELECT = "/api/stocks/select"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Callable[[], bool], timeout: float, message: str, every: float = 0.05) -> None:
    """Poll ``cond`` until it is true; :class:`RuntimeError` ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(message)
        time.sleep(every)


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group ``pgid`` is still alive."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


class ServeProcess:
    """``vfr serve --workers N`` in its own process group: :meth:`kill9` ends the uvicorn
    supervisor and its workers at once, as a crash of the host's service would."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 2) -> None:
        self.env, self.log, self.workers = env, log, workers
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vfr.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers), "--log-level", "warning"],
                env=self.env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)

    def wait_listening(self, timeout: float = 300) -> None:
        """Until the port accepts connections (uvicorn listens once the first worker has started)."""
        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return True
            except OSError:
                return False
        wait_for(up, timeout, "the server did not listen", every=0.1)

    def wait_ml_ok(self, timeout: float = 300) -> float:
        """Seconds until a select with ML answers 200 with ``ml.status == ok``."""
        import httpx

        t0 = time.monotonic()
        with httpx.Client(base_url=self.base, timeout=60) as client:
            while True:
                try:
                    r = client.get(SELECT, params={"include_ml": "true"})
                    if r.status_code == 200 and r.json()["ml"]["status"] == "ok":
                        return time.monotonic() - t0
                except httpx.HTTPError:
                    pass
                if time.monotonic() - t0 > timeout or self.proc is None or self.proc.poll() is not None:
                    raise RuntimeError("vfr serve did not answer with ML: " + self.log.read_text()[-3000:])
                time.sleep(0.2)

    def kill9(self) -> None:
        """SIGKILL to the whole process group; returns once no process of it is left."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        pgid = self.proc.pid
        wait_for(lambda: not group_alive(pgid), 10, "a server worker survived kill -9 of its process group")

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM (a clean shutdown), then :meth:`kill9` after ``timeout`` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()


class RedisProcess:
    """A private ``redis-server`` (the options of .ci/run, on a free port and in ``folder``)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                    "--appendonly", "no", "--dir", str(folder), "--logfile", str(folder / "redis.log")]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)

        def pong() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False
        try:
            wait_for(pong, 20, "redis-server did not start")
        finally:
            client.close()

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill9()
