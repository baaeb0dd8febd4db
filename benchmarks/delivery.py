"""Message delivery across processes: latency same-process vs cross-process, and relay
throughput with ``--workers 1`` vs ``--workers 2``, in one run, on a private Redis.

    python -m benchmarks.delivery [--pairs 20] [--seconds 8] [--rate 200] [--json FILE]

Everything runs on this machine (loopback only); the client load runs in this process, so
on a 2-core machine the client competes with the servers: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import websockets

from chatserver.embedded import redis_server_binary

PROTOCOL = "chat.v1.msgpack"
PASSWORD = "benchmark password"
ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "1048576", "MALLOC_TRIM_THRESHOLD_": "4194304"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    """Poll ``GET /readyz`` until it answers 200; fail early when the process died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def redis_process(
    tmp: Path, *, unix: bool = False
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private Redis (append-only, fsync every second) on a TCP port or a unix socket."""
    port = 0 if unix else free_port()
    sock = tmp / f"redis-{os.getpid()}-{time.monotonic_ns()}.sock"
    args = [
        redis_server_binary(),
        "--port",
        str(port),
        "--dir",
        str(tmp),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
    ]
    args += (
        ["--unixsocket", str(sock), "--unixsocketperm", "700"] if unix else ["--bind", "127.0.0.1"]
    )
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        yield (f"unix://{sock}" if unix else f"redis://127.0.0.1:{port}/0"), proc
    finally:
        stop(proc)


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    with redis_process(tmp) as (url, _):
        yield url


def bench_config(prefix: str, extra: str = "") -> str:
    """Configuration for benchmarks: rate and per-address limits out of the way."""
    return (
        f'[server]\nkey_prefix = "{prefix}"\n[auth]\ntotp_roles = []\n'
        "[limits]\nvisitor_rate = 10000\nvisitor_burst = 10000\n"
        "staff_rate = 10000\nstaff_burst = 10000\nconnections_per_address = 0\n" + extra
    )


@contextlib.contextmanager
def chatserver_process(
    tmp: Path,
    redis_url: str | None,
    workers: int,
    prefix: str,
    *,
    data_dir: Path | None = None,
    extra_config: str = "",
    log: Path | None = None,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``chatserver serve`` in its own process; without ``redis_url`` the embedded default
    (a private Redis in ``data_dir``). Yields the port and the process."""
    port = free_port()
    config = tmp / f"bench-{port}.toml"
    config.write_text(bench_config(prefix, extra_config))
    command = [sys.executable, "-m", "chatserver", "serve", "--port", str(port)]
    if redis_url is not None:
        command += ["--redis-url", redis_url]
    command += ["--data-dir", str(data_dir or tmp / f"data-{port}"), "--config", str(config)]
    command += ["--workers", str(workers), "--log-level", "warning"]
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log else subprocess.DEVNULL
        env = {k: v for k, v in ENV.items() if k != "REDIS_URL"}
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=out)
        try:
            wait_ready(port, proc, "server", 30)
            yield port, proc
        finally:
            stop(proc)


@contextlib.contextmanager
def chatserver(tmp: Path, redis_url: str, workers: int, prefix: str) -> Iterator[int]:
    with chatserver_process(tmp, redis_url, workers, prefix) as (port, _):
        yield port


@contextlib.contextmanager
def raw_relay_process(log: Path | None = None) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """The raw relay (benchmarks/raw_relay.py) in its own process, same allocator settings."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.raw_relay", "--port", str(port)],
            env=ENV,
            stdout=out,
            stderr=out,
        )
        try:
            wait_ready(port, proc, "raw relay", 20)
            yield port, proc
        finally:
            stop(proc)


@contextlib.contextmanager
def raw_relay() -> Iterator[int]:
    with raw_relay_process() as (port, _):
        yield port


def add_counsellors(
    redis_url: str | None,
    tmp: Path,
    names: list[str],
    prefix: str,
    *,
    role: str = "counsellor",
    data_dir: Path | None = None,
) -> None:
    """Staff accounts through the documented command line, one ``chatserver staff add``
    each; with ``data_dir`` instead of ``redis_url``, in that embedded server's Redis."""
    config = tmp / f"accounts-{prefix}.toml"
    config.write_text(f'[server]\nkey_prefix = "{prefix}"\n[auth]\ntotp_roles = []\n')
    store = ["--redis-url", redis_url] if redis_url else ["--data-dir", str(data_dir)]
    for name in names:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "chatserver",
                "staff",
                "add",
                name,
                "--role",
                role,
                "--display-name",
                name,
                "--password-stdin",
                *store,
                "--config",
                str(config),
            ],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            check=False,
        )


async def recv(ws: Any) -> dict[str, Any]:
    return msgpack.unpackb(await ws.recv(), raw=False)  # type: ignore[no-any-return]


async def open_pairs(
    visitor_port: int, counsellor_port: int, names: list[str], pairs: int, tag: str
) -> tuple[list[Any], list[Any], list[str]]:
    counsellors = []
    async with aiohttp.ClientSession() as http:
        for name in names:
            async with http.post(
                f"http://127.0.0.1:{counsellor_port}/api/login",
                json={"username": name, "password": PASSWORD},
            ) as r:
                token = (await r.json())["token"]
            ws = await websockets.connect(
                f"ws://127.0.0.1:{counsellor_port}/ws/staff",
                subprotocols=[PROTOCOL],  # type: ignore[list-item]
                additional_headers={"Authorization": f"Bearer {token}"},
                max_size=None,
            )
            await ws.send(msgpack.packb({"type": "status", "state": "available", "capacity": 10}))
            counsellors.append(ws)
    visitors, convs = [], []
    for i in range(pairs):
        ws = await websockets.connect(
            f"ws://127.0.0.1:{visitor_port}/ws/visitor",
            subprotocols=[PROTOCOL],  # type: ignore[list-item]
        )
        await ws.send(msgpack.packb({"type": "hello", "nickname": f"B{tag}{i}"}))
        while (frame := await recv(ws))["type"] != "welcome":
            pass
        convs.append(frame["conversation_id"])
        visitors.append(ws)
    for ws in visitors:
        while (await recv(ws))["type"] != "assigned":
            pass
    return visitors, counsellors, convs


async def close_all(*groups: list[Any]) -> None:
    for group in groups:
        for ws in group:
            with contextlib.suppress(Exception):
                await ws.close()


async def latency(
    visitor_port: int,
    counsellor_port: int,
    names: list[str],
    pairs: int,
    rate: float,
    seconds: float,
    tag: str,
) -> list[float]:
    """Open loop: each message is due at a fixed time; latency counts from that time."""
    visitors, counsellors, _ = await open_pairs(visitor_port, counsellor_port, names, pairs, tag)
    samples: list[float] = []
    stop = asyncio.Event()

    async def listen(ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for data in ws:
                frame = msgpack.unpackb(data, raw=False)
                if frame["type"] == "message" and frame["text"].startswith("t="):
                    samples.append(time.perf_counter() - float(frame["text"][2:]))

    async def drain(ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                if stop.is_set():
                    return

    listeners = [asyncio.create_task(listen(ws)) for ws in counsellors]
    drains = [asyncio.create_task(drain(ws)) for ws in visitors]
    interval = pairs / rate
    start = time.perf_counter() + 0.2
    n = int(seconds * rate / pairs)

    async def send(i: int, ws: Any) -> None:
        for k in range(n):
            due = start + k * interval + i * interval / pairs
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await ws.send(msgpack.packb({"type": "say", "text": f"t={due!r}", "ref": f"{k}"}))

    await asyncio.gather(*(send(i, ws) for i, ws in enumerate(visitors)))
    await asyncio.sleep(1.0)
    stop.set()
    for task in listeners + drains:
        task.cancel()
    await close_all(visitors, counsellors)
    return samples


async def throughput(port: int, names: list[str], pairs: int, seconds: float, tag: str) -> float:
    """Closed loop: each visitor sends the next message once the previous one is acked."""
    visitors, counsellors, _ = await open_pairs(port, port, names, pairs, tag)
    delivered = 0
    counting = False

    async def listen(ws: Any) -> None:
        nonlocal delivered
        with contextlib.suppress(websockets.ConnectionClosed):
            async for data in ws:
                if counting and msgpack.unpackb(data, raw=False)["type"] == "message":
                    delivered += 1

    async def chat(ws: Any, until: float) -> None:
        k = 0
        while time.perf_counter() < until:
            await ws.send(msgpack.packb({"type": "say", "text": "x" * 40, "ref": str(k)}))
            while (await recv(ws))["type"] != "ack":
                pass
            k += 1

    listeners = [asyncio.create_task(listen(ws)) for ws in counsellors]
    counting = True
    began = time.perf_counter()
    await asyncio.gather(*(chat(ws, began + seconds) for ws in visitors))
    elapsed = time.perf_counter() - began
    await asyncio.sleep(0.5)
    for task in listeners:
        task.cancel()
    await close_all(visitors, counsellors)
    return delivered / elapsed


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "pairs": args.pairs,
        "rate": args.rate,
        "seconds": args.seconds,
        "malloc": "MALLOC_MMAP_THRESHOLD_=1048576 MALLOC_TRIM_THRESHOLD_=4194304",
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with redis_server(tmp) as url:
            names = [f"bc{i}" for i in range(max(2, args.pairs // 10 + 1))]
            for prefix in ("same", "cross", "w1", "w2"):  # each phase its own namespace
                add_counsellors(url, tmp, names, prefix)
            with chatserver(tmp, url, 1, "same") as a:
                same = await latency(a, a, names, args.pairs, args.rate, args.seconds, "s")
            with chatserver(tmp, url, 1, "cross") as a, chatserver(tmp, url, 1, "cross") as b:
                cross = await latency(a, b, names, args.pairs, args.rate, args.seconds, "x")
            results["same_process_ms"] = {
                "p50": pct(same, 50),
                "p99": pct(same, 99),
                "n": len(same),
            }
            results["cross_process_ms"] = {
                "p50": pct(cross, 50),
                "p99": pct(cross, 99),
                "n": len(cross),
            }
            with raw_relay() as raw:
                lat = await latency(raw, raw, names, args.pairs, args.rate, args.seconds, "r")
                results["raw_relay_ms"] = {"p50": pct(lat, 50), "p99": pct(lat, 99), "n": len(lat)}
                results["raw_relay_msg_per_s"] = await throughput(
                    raw, names, args.pairs, args.seconds, "r"
                )
            for workers in (1, 2):
                with chatserver(tmp, url, workers, f"w{workers}") as port:
                    results[f"workers_{workers}_msg_per_s"] = await throughput(
                        port, names, args.pairs, args.seconds, f"w{workers}"
                    )
    results["workers_ratio"] = results["workers_2_msg_per_s"] / results["workers_1_msg_per_s"]
    results["product_to_raw_ratio"] = (
        results["workers_1_msg_per_s"] / results["raw_relay_msg_per_s"]
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0, help="offered msg/s (latency)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(f"pairs={args.pairs} offered={args.rate:.0f} msg/s for latency; {results['malloc']}")
    for key in ("raw_relay_ms", "same_process_ms", "cross_process_ms"):
        r = results[key]
        print(f"{key:<18} p50 {r['p50']:7.2f} ms   p99 {r['p99']:7.2f} ms   (n={r['n']})")
    print(f"throughput --workers 1: {results['workers_1_msg_per_s']:8.0f} msg/s delivered")
    print(f"throughput --workers 2: {results['workers_2_msg_per_s']:8.0f} msg/s delivered")
    print(f"ratio workers 2 / 1:    {results['workers_ratio']:8.2f}")
    print(f"raw relay:              {results['raw_relay_msg_per_s']:8.0f} msg/s delivered")
    print(f"ratio product (1 worker) / raw relay: {results['product_to_raw_ratio']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
