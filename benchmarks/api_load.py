"""Load benchmark of the HTTP API against 127.0.0.1 only.

One command:  python benchmarks/api_load.py [--source /work/fullrun] [--cache-url redis://...]

Copies the full-data store (DuckDB market store + MLflow registry with a champion) from
``--source`` into a temporary folder, starts ``vfr serve`` on a free 127.0.0.1 port in a
subprocess, and measures (bounded in requests and time):

1. select over the whole universe with ML, warm, one client: p50/p95/p99 (target p95 <= 50 ms);
2. analyze one symbol, warm, one client (target p95 <= 10 ms);
3. 64 concurrent clients for ``--duration`` seconds (at most 120) on a mix of select with ML,
   analyze and classic select: requests, errors (target 0), throughput, latency;
4. the server process's peak resident memory (target <= 2 GB).

Results are appended to docs/benchmarks.md with the machine (``--no-write`` to only print).
Exits 0 with a message, writing nothing, when the source store is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from run import append_results, machine  # noqa: E402  (one description of the machine for every benchmark)

TARGETS = {"select_ml_p95_ms": 50.0, "analyze_p95_ms": 10.0, "errors": 0, "peak_rss_gb": 2.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_gb(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"n": int(a.size), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def sequential(client: httpx.Client, path: str, params_list: list[dict], n: int) -> tuple[dict, int]:
    times, errors = [], 0
    for i in range(n):
        t0 = time.perf_counter()
        r = client.get(path, params=params_list[i % len(params_list)])
        times.append((time.perf_counter() - t0) * 1000)
        errors += r.status_code != 200
    return pct(times), errors


async def concurrent(base: str, clients: int, duration: float, symbols: list[str]) -> dict:
    mix = [("/api/stocks/select", {"include_ml": "true"}), ("/api/stocks/analyze", None),
           ("/api/stocks/select", {"top": "20"}), ("/api/stocks/analyze", None)]
    times: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(k: int, client: httpx.AsyncClient) -> None:
        i = k
        while time.perf_counter() < deadline:
            path, params = mix[i % len(mix)]
            if params is None:
                params = {"symbols": symbols[i % len(symbols)]}
            i += 1
            t0 = time.perf_counter()
            try:
                r = await client.get(path, params=params)
                ok = r.status_code == 200
                key = str(r.status_code)
            except httpx.HTTPError as exc:
                ok, key = False, exc.__class__.__name__
            times.append((time.perf_counter() - t0) * 1000)
            if not ok:
                errors[key] = errors.get(key, 0) + 1

    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k, client) for k in range(clients)))
        wall = time.perf_counter() - t0
    return {"requests": len(times), "errors": sum(errors.values()), "error_kinds": errors,
            "rps": len(times) / wall, "latency": pct(times), "wall_s": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path(os.environ.get("VFR_HOME", "/work/fullrun")),
                        help="folder with vfr.duckdb and mlflow.db (copied; never written)")
    parser.add_argument("--cache-url", default=None, help="Redis URL for the serving caches (default: memory)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the concurrent phase (<= 120)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (<= 256)")
    parser.add_argument("--requests", type=int, default=400, help="requests per sequential phase (<= 5000)")
    parser.add_argument("--no-write", action="store_true", help="print results without touching docs/benchmarks.md")
    args = parser.parse_args()
    duration, clients, n = min(args.duration, 120.0), min(args.clients, 256), min(args.requests, 5000)
    if not (args.source / "vfr.duckdb").exists() or not (args.source / "mlflow.db").exists():
        print(f"no store at {args.source} (needs vfr.duckdb and mlflow.db); nothing measured")
        return 0

    with tempfile.TemporaryDirectory(prefix="vfr-api-bench-") as tmp:
        home = Path(tmp)
        shutil.copy2(args.source / "vfr.duckdb", home / "vfr.duckdb")
        shutil.copy2(args.source / "mlflow.db", home / "mlflow.db")  # artifacts are read where they are
        port = free_port()
        env = os.environ | {"VFR_HOME": str(home), "VFR_JWT_SECRET": secrets.token_hex(32),
                            "VFR_RATE_LIMIT_ANONYMOUS": "10000000/minute"}
        if args.cache_url:
            env |= {"VFR_CACHE_URL": args.cache_url, "VFR_CACHE_PREFIX": f"vfr-bench-{secrets.token_hex(4)}"}
        server = subprocess.Popen([sys.executable, "-m", "vfr.cli", "serve", "--host", "127.0.0.1", "--port",
                                   str(port), "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=120) as client:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        client.get("/api/health")
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline or server.poll() is not None:
                            print("server did not start:", server.stderr.read().decode()[-2000:] if server.stderr
                                  else "")
                            return 1
                        time.sleep(0.3)
                t0 = time.perf_counter()
                first = client.get("/api/stocks/select", params={"include_ml": "true"})
                cold_ms = (time.perf_counter() - t0) * 1000
                body = first.json()
                deadline = time.monotonic() + 120
                while body["ml"]["status"] != "ok":  # the server warms up in the background
                    if time.monotonic() > deadline:
                        print("ML not ok:", body["ml"])
                        return 1
                    time.sleep(1)
                    body = client.get("/api/stocks/select", params={"include_ml": "true"}).json()
                universe = [r["symbol"] for r in body["results"]]
                for i in range(0, len(universe), 50):  # warm the per-symbol explanation cache
                    client.get("/api/stocks/analyze", params={"symbols": ",".join(universe[i:i + 50])})
                select_ml, e1 = sequential(client, "/api/stocks/select", [{"include_ml": "true"}], n)
                analyze, e2 = sequential(client, "/api/stocks/analyze",
                                         [{"symbols": s} for s in universe], n)
                admin = {"Authorization": "Bearer " + subprocess.run(
                    [sys.executable, "-m", "vfr.cli", "auth", "token", "--user", "bench", "--tier", "admin",
                     "--days", "1"], env=env, capture_output=True, text=True, check=True).stdout.strip()}
                server_side = client.get("/api/ml/health", headers=admin).json()["latency"]
            load = asyncio.run(concurrent(base, clients, duration, universe))
            peak = rss_gb(server.pid)
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()

    srv_sel = server_side.get("GET /api/stocks/select", {})
    srv_ana = server_side.get("GET /api/stocks/analyze", {})
    lines = [
        f"## API load (`benchmarks/api_load.py`, {date.today().isoformat()})", "",
        f"Machine: {machine()}; load average at the end of the run "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
        + ". Server: `vfr serve` (one uvicorn worker) on 127.0.0.1; client: this script "
        f"(httpx) on the same machine. Store: DuckDB copy of the full run ({len(universe)} symbols on the "
        f"latest date), champion from MLflow. Caches: {'Redis' if args.cache_url else 'process memory'}.", "",
        "| measure | value | target |", "| --- | ---: | ---: |",
        f"| select, whole universe, first call after start (warm-up running) | {cold_ms:.0f} ms | |",
        f"| select, whole universe, with ML, warm: p50 / p95 / p99 ({select_ml['n']} calls) | "
        f"{select_ml['p50']:.1f} / {select_ml['p95']:.1f} / {select_ml['p99']:.1f} ms | p95 <= 50 ms |",
        f"| analyze one symbol, warm: p50 / p95 / p99 ({analyze['n']} calls) | "
        f"{analyze['p50']:.1f} / {analyze['p95']:.1f} / {analyze['p99']:.1f} ms | p95 <= 10 ms |",
        f"| server-side time (middleware), select calls: p50 / p95 / p99 ({srv_sel.get('count', 0):.0f}) | "
        f"{srv_sel.get('p50_ms', float('nan')):.1f} / {srv_sel.get('p95_ms', float('nan')):.1f} / "
        f"{srv_sel.get('p99_ms', float('nan')):.1f} ms | |",
        f"| server-side time (middleware), analyze calls: p50 / p95 / p99 ({srv_ana.get('count', 0):.0f}) | "
        f"{srv_ana.get('p50_ms', float('nan')):.1f} / {srv_ana.get('p95_ms', float('nan')):.1f} / "
        f"{srv_ana.get('p99_ms', float('nan')):.1f} ms | |",
        f"| {clients} concurrent clients for {load['wall_s']:.0f} s: requests / errors | "
        f"{load['requests']:,} / {load['errors']} | 0 errors |",
        f"| ... throughput; latency p50 / p95 / p99 | {load['rps']:.0f} req/s; {load['latency']['p50']:.0f} / "
        f"{load['latency']['p95']:.0f} / {load['latency']['p99']:.0f} ms | |",
        f"| server peak resident memory | {peak:.2f} GiB | <= 2 GB |", "",
    ]
    text = "\n".join(lines)
    print(text)
    if load["error_kinds"]:
        print("errors by kind:", load["error_kinds"])
    if not args.no_write:
        append_results("\n" + text + "\n")
    ok = (select_ml["p95"] <= TARGETS["select_ml_p95_ms"] and analyze["p95"] <= TARGETS["analyze_p95_ms"]
          and load["errors"] == 0 and e1 + e2 == 0 and peak <= TARGETS["peak_rss_gb"])
    print("targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
