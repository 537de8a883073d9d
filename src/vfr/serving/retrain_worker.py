"""Retraining triggered through the API runs in a worker process, not in the API's process.

Training takes seconds to minutes of CPU; run in a thread of the API it would halve serving
throughput (and hold the GIL against the request threads). ``POST /api/ml/retraining/trigger``
therefore starts ``python -m vfr.serving.retrain_worker`` (:class:`RetrainingWorkers`): a
separate process, in its own session, that is handed the settings (pickled on its stdin) and
calls :func:`vfr.retraining.run_retraining` exactly as ``vfr retrain`` does. The worker records
its run row and holds the retraining lease (``host:pid`` of the worker) in the operations
database, so ``/api/ml/retraining/status`` reports it from any API process; its console output
goes to the server's stderr; its decision comes back as one JSON line on its stdout.

A worker that dies (killed, out of memory) leaves a lease whose holder is gone: when the API
sees its worker exit without a decision it reaps that lease at once, which marks the run
``failed`` ("holder died: ..."); ``/api/ml/retraining/status`` reaps it too (an API restarted
meanwhile). The worker is not a child the API waits for at shutdown: a run in progress finishes
(or is reaped by whoever looks next).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vfr.config import Settings

log = logging.getLogger(__name__)


@dataclass
class WorkerJob:
    """One retraining worker: its process id and, once it exited, its exit code and answer.

    ``result`` is ``{"decision": {...}}`` (:meth:`RetrainingDecision.to_dict`), ``{"failed":
    reason}`` for a run that failed and was recorded so, or None when the worker died without
    answering (its run is then reaped as failed).
    """

    pid: int
    process: subprocess.Popen = field(repr=False)
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    returncode: int | None = None
    result: dict[str, Any] | None = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the worker to exit (and its answer to be read); True when it has."""
        return self.done.wait(timeout)


class RetrainingWorkers:
    """Starts retraining workers and watches them (one thread per running worker).

    Parameters
    ----------
    settings : Settings
        Handed to the worker as they are (pickled), so it trains on the same store, registry
        and operations database as the API.
    on_exit : callable, optional
        Called with the finished :class:`WorkerJob` (the API drops its cached registry answers
        and reaps the lease of a worker that died); its errors are logged.
    """

    def __init__(self, settings: Settings, on_exit: Callable[[WorkerJob], None] | None = None) -> None:
        self.settings = settings
        self.on_exit = on_exit
        self.jobs: list[WorkerJob] = []

    def start(self, *, rebuild_features: bool = True, trigger: str = "api") -> WorkerJob:
        """Start a worker running ``run_retraining(settings, trigger=, rebuild_features=)``; returns at once."""
        payload = pickle.dumps({"settings": self.settings, "trigger": trigger, "rebuild_features": rebuild_features})
        proc = subprocess.Popen([sys.executable, "-m", "vfr.serving.retrain_worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, start_new_session=True, close_fds=True)
        job = WorkerJob(pid=proc.pid, process=proc)
        self.jobs = [j for j in self.jobs if not j.done.is_set()] + [job]
        threading.Thread(target=self._watch, args=(job, payload), name=f"vfr-retrain-watch-{proc.pid}",
                         daemon=True).start()
        log.info("retraining worker started (pid %d)", proc.pid)
        return job

    def _watch(self, job: WorkerJob, payload: bytes) -> None:
        try:
            out, _ = job.process.communicate(payload)
        except Exception as exc:  # noqa: BLE001 - the pipe broke: the worker's exit code says the rest
            log.warning("retraining worker %d: %s", job.pid, exc.__class__.__name__)
            out = b""
            job.process.wait()
        job.returncode = job.process.returncode
        try:
            job.result = json.loads(out) if out else None
        except ValueError:
            job.result = None
        if job.result is None:
            log.error("retraining worker %d exited with code %s without a decision", job.pid, job.returncode)
        try:
            if self.on_exit is not None:
                self.on_exit(job)
        except Exception:  # noqa: BLE001
            log.exception("after retraining worker %d", job.pid)
        finally:
            job.done.set()

    def running(self) -> list[int]:
        """Process ids of the workers this API started that have not exited yet."""
        return [j.pid for j in self.jobs if not j.done.is_set()]


def main() -> int:
    """Worker entry point: read the pickled arguments on stdin, retrain, print the answer as JSON."""
    from vfr.errors import StageError
    from vfr.retraining import run_retraining

    answer_to = os.fdopen(os.dup(1), "w")  # the answer's channel; anything else printed goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s retrain-worker %(message)s")
    args = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - written by the API that started this process
    code = 0
    try:
        decision = run_retraining(args["settings"], trigger=args["trigger"],
                                  rebuild_features=args["rebuild_features"])
        answer: dict[str, Any] = {"decision": decision.to_dict()}
    except StageError as exc:  # recorded as a failed run with its reason
        answer, code = {"failed": str(exc)}, 1
    try:
        answer_to.write(json.dumps(answer, default=str) + "\n")
        answer_to.close()
    except BrokenPipeError:  # the API went away; the run is recorded in the database anyway
        pass
    return code


if __name__ == "__main__":  # pragma: no cover - run as a process by RetrainingWorkers
    sys.exit(main())
