"""Connecting to Dask: in process, a LocalCluster, or an existing cluster.

``VFR_DASK_SCHEDULER`` (``Settings.dask_scheduler``) chooses:

- unset or empty: no cluster; callers run their work in this process (today's behaviour);
- ``local:N``: a :class:`distributed.LocalCluster` with N worker processes (1 thread each);
- ``tcp://host:8786`` (or any scheduler address): an existing cluster, e.g. one started with
  ``dask scheduler`` and ``dask worker tcp://host:8786`` on several machines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from vfr.config import Settings


def parse_scheduler(spec: str | None) -> tuple[str, Any]:
    """Classify a scheduler spec: ``("none", None)``, ``("local", n_workers)`` or ``("address", addr)``.

    Raises
    ------
    ValueError
        If the spec is neither empty, ``local:N`` with N >= 1, nor a ``scheme://`` address.
    """
    if spec is None or not spec.strip():
        return "none", None
    spec = spec.strip()
    if m := re.fullmatch(r"local:(\d+)", spec):
        n = int(m.group(1))
        if n < 1:
            raise ValueError(f"VFR_DASK_SCHEDULER={spec!r}: local needs at least 1 worker")
        return "local", n
    if re.fullmatch(r"[a-z]+://\S+", spec):
        return "address", spec
    raise ValueError(f"VFR_DASK_SCHEDULER={spec!r}: expected 'local:N' or an address such as 'tcp://host:8786'")


@contextmanager
def dask_client(settings: Settings | None = None, *, scheduler: str | None = None,
                announce: Callable[[str], None] | None = print) -> Iterator[Any]:
    """Yield a :class:`distributed.Client` for the configured scheduler, or None for in-process.

    Parameters
    ----------
    settings : Settings, optional
        Its ``dask_scheduler`` is used unless ``scheduler`` is given.
    scheduler : str, optional
        Overrides the settings.
    announce : callable, optional
        Called with a line giving the dashboard link (default ``print``; None for silence).

    The client (and a LocalCluster it started) is closed on exit; an existing cluster is
    left running.
    """
    kind, arg = parse_scheduler(scheduler if scheduler is not None else (settings.dask_scheduler if settings else None))
    if kind == "none":
        yield None
        return
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=arg, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0") if kind == "local" else None
    client = Client(cluster if cluster is not None else arg)
    try:
        if announce is not None:
            announce(f"Dask: {len(client.scheduler_info()['workers'])} workers; dashboard {client.dashboard_link}")
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def task_map(client: Any, fn: Callable[..., Any], *iterables: Iterable[Any],
             progress: Callable[[int], None] | None = None, **kwargs: Any) -> list[Any]:
    """``[fn(*args, **kwargs) for args in zip(*iterables)]``, on the cluster when ``client`` is given.

    The one place where VFR chooses between running tasks locally and on Dask: with a client
    each call is a Dask task (``client.map``, results gathered in order); without one the
    same function runs here, so both paths compute the same thing. ``progress`` is called
    with 1 as each task finishes (in completion order on a cluster).
    """
    if client is None:
        out = []
        for args in zip(*iterables, strict=True):
            out.append(fn(*args, **kwargs))
            if progress is not None:
                progress(1)
        return out
    futures = client.map(fn, *iterables, pure=False, **kwargs)
    if progress is not None:
        from distributed import as_completed

        for _ in as_completed(futures):
            progress(1)
    return client.gather(futures)
