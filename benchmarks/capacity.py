"""How many young people one machine serves, measured against the raw limit of the machine.

    python -m benchmarks.capacity                  # the full run (about 9 minutes)
    python -m benchmarks.capacity --quick          # a tiny smoke run (about 30 seconds)
    python -m benchmarks.capacity --profile DIR    # also py-spy the product under saturation
    python -m benchmarks.capacity --visitors 4600 --idle 0   # every visitor paired (slow)

Needs ``pip install -e '.[bench]'`` for the chart (matplotlib) and ``--profile`` (py-spy).

Starts every target itself, all on this machine (loopback only), and keeps them up for the
whole run so that their phases can be interleaved:

* ``raw``: the raw relay (``benchmarks/raw_relay.py``): pairs relayed in one aiohttp
  process, no storage, no queue; it stands for the limit of this machine;
* ``embedded``: ``chatserver serve --data-dir TMP`` (one worker and its own private Redis);
* ``workers2``: ``chatserver serve --workers 2`` on a private Redis the benchmark starts
  (unix socket, append-only with fsync every second: the embedded Redis's settings).

Every target gets the same load from its own separate client processes (``websockets``
client, msgpack subprotocol, one asyncio loop each): ``--visitors`` visitors paired with
N/10 counsellors (capacity 10, the server's maximum, and 2 % spare), ``--idle`` visitor
sockets that say nothing, so that more than 5,000 connections are held by default, and
the same glibc allocator settings
(``MALLOC_MMAP_THRESHOLD_=1048576 MALLOC_TRIM_THRESHOLD_=4194304``). Measured:

1. server CPU per message at a fixed offered rate (utime+stime of the server processes and
   of their Redis from ``/proc/PID/stat``, before and after the window);
2. relay throughput at saturation: acknowledged visitor messages delivered to counsellors
   per second, closed loop (each sender waits for its ack);
3. latency from the time a message is due to its delivery to the counsellor (open loop:
   the client's own lag counts too), p50 and p99, over a sweep of offered rates;
4. connections held and resident memory per connection (server, and Redis separately);
5. visitors assigned per second from a full queue (the raw relay pairs at ``hello``).

Read ratios, not absolutes: the machine is shared, and the clients share its cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from benchmarks import capacity_client
from benchmarks.delivery import (
    ENV,
    PASSWORD,
    add_counsellors,
    chatserver_process,
    raw_relay_process,
    redis_process,
)

TARGETS = ("raw", "embedded", "workers2")
LABELS = {
    "raw": "raw relay",
    "embedded": "product, 1 worker",
    "workers2": "product, --workers 2",
}
MALLOC = " ".join(f"{k}={ENV[k]}" for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"))
RESULTS = Path(__file__).resolve().parent / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
monotonic = time.monotonic


# -- /proc -------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        data = fh.read()
    return data[data.rindex(")") + 2 :].split()  # fields from 3 (state) on


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])  # fields 14 and 15
    return total / CLOCK_TICKS


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/statm") as fh:
            total += int(fh.read().split()[1]) * PAGE
    return total


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def listeners(port: int) -> int:
    """How many sockets listen on this TCP port (one per worker with SO_REUSEPORT)."""
    want = f":{port:04X}"
    count = 0
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            parts = line.split()
            if parts[1].endswith(want) and parts[3] == "0A":
                count += 1
    return count


def maps_uvloop(pid: int) -> bool:
    """Whether uvloop's extension is mapped in this process."""
    try:
        return "uvloop/loop." in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


# -- client processes ----------------------------------------------------------------------


class ClientPool:
    """Separate client processes (spawned interpreters), one command at a time each."""

    def __init__(self, port: int, procs: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Pipe] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for i in range(procs):
            mine, theirs = ctx.Pipe()
            p = ctx.Process(
                target=capacity_client.run, args=(theirs, port, i, procs), name=f"client-{i}"
            )
            p.start()
            theirs.close()
            self.pipes.append(mine)
            self.procs.append(p)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def send(self, command: str, per: list[dict[str, Any]] | dict[str, Any]) -> None:
        for i, pipe in enumerate(self.pipes):
            pipe.send((command, per[i] if isinstance(per, list) else per))

    def gather(self, timeout: float) -> list[dict[str, Any]]:
        deadline = monotonic() + timeout
        out = []
        for i, pipe in enumerate(self.pipes):
            if not pipe.poll(max(0.0, deadline - monotonic())):
                raise TimeoutError(f"client {i} did not answer within {timeout:.0f} s")
            status, result = pipe.recv()
            if status != "ok":
                raise RuntimeError(f"client {i} failed:\n{result}")
            out.append(result)
        return out

    def call(
        self, command: str, per: list[dict[str, Any]] | dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]:
        self.send(command, per)
        return self.gather(timeout)

    def one(self, command: str, kwargs: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.pipes[0].send((command, kwargs))
        if not self.pipes[0].poll(timeout):
            raise TimeoutError(f"client 0 did not answer {command} within {timeout:.0f} s")
        status, result = self.pipes[0].recv()
        if status != "ok":
            raise RuntimeError(f"client 0 failed:\n{result}")
        return dict(result)

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("exit", {}))
        deadline = monotonic() + 30
        for p in self.procs:
            p.join(max(0.1, deadline - monotonic()))
            if p.is_alive():
                p.kill()
                p.join(5)


# -- targets -------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    port: int
    server: list[int]  # the Python processes of the server
    redis: list[int]  # its Redis (counted in CPU per message; memory reported apart)
    log: Path
    clients: ClientPool | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: Error frames the clients have had so far (to tell each phase its own).
    errors: Counter[str] = field(default_factory=Counter)

    def cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.server), cpu_seconds(self.redis)


def _http(port: int, path: str, body: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers=headers
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as r:
        return json.loads(r.read())


def make_accounts(
    port: int, tmp: Path, names: list[str], prefix: str, redis_url: str | None, data: Path | None
) -> float:
    """An admin through ``chatserver staff add``, then the counsellors through the admin API
    (``POST /api/staff``): one command-line process per account would take minutes."""
    began = monotonic()
    add_counsellors(redis_url, tmp, ["benchadmin"], prefix, role="admin", data_dir=data)
    token = _http(port, "/api/login", {"username": "benchadmin", "password": PASSWORD})["token"]

    def add(name: str) -> None:
        body = {"username": name, "password": PASSWORD, "role": "counsellor"}
        _http(port, "/api/staff", body | {"display_name": name}, token)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(add, names))
    return monotonic() - began


def wait_workers(port: int, workers: int, timeout: float = 30) -> None:
    deadline = monotonic() + timeout
    while listeners(port) < workers:
        if monotonic() > deadline:
            raise RuntimeError(f"only {listeners(port)} of {workers} workers listen")
        time.sleep(0.1)


@contextlib.contextmanager
def bring_up(
    name: str, args: argparse.Namespace, tmp: Path, logs: Path, names: list[str]
) -> Iterator[Target]:
    log = logs / f"{name}.log"
    log.write_bytes(b"")
    prefix = f"cap{name}"
    extra = f"[queue]\nmax_waiting = {args.visitors + 100}\n"
    with contextlib.ExitStack() as stack:
        began = monotonic()
        if name == "raw":
            port, proc = stack.enter_context(raw_relay_process(log))
            target = Target(name, port, [proc.pid], [], log)
        elif name == "embedded":
            data = tmp / "embedded-data"
            port, proc = stack.enter_context(
                chatserver_process(tmp, None, 1, prefix, data_dir=data, extra_config=extra, log=log)
            )
            kids = descendants(proc.pid)
            redis = [p for p in kids if comm(p) == "redis-server"]
            target = Target(
                name, port, [proc.pid, *(p for p in kids if p not in redis)], redis, log
            )
            target.info["accounts_seconds"] = make_accounts(port, tmp, names, prefix, None, data)
        else:
            rdir = tmp / "workers2-redis"
            rdir.mkdir()
            url, rproc = stack.enter_context(redis_process(rdir, unix=True))
            port, proc = stack.enter_context(
                chatserver_process(tmp, url, 2, prefix, extra_config=extra, log=log)
            )
            wait_workers(port, 2)
            target = Target(name, port, [proc.pid, *descendants(proc.pid)], [rproc.pid], log)
            target.info["accounts_seconds"] = make_accounts(port, tmp, names, prefix, url, None)
        target.info["start_seconds"] = monotonic() - began
        target.info["uvloop_mapped"] = [maps_uvloop(p) for p in target.server]
        target.clients = ClientPool(port, args.clients)
        stack.callback(target.clients.close)
        yield target


# -- phases --------------------------------------------------------------------------------


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - monotonic()))


def memory(target: Target) -> dict[str, int]:
    return {
        "server_rss": rss_bytes(target.server),
        "redis_rss": rss_bytes(target.redis),
        "server_fds": sum(open_fds(p) for p in target.server),
        "redis_fds": sum(open_fds(p) for p in target.redis),
    }


STARTED = monotonic()


def progress(text: str) -> None:
    print(f"[{monotonic() - STARTED:6.0f} s] {text}", file=sys.stderr, flush=True)


def _rate(times: list[float], began: float) -> float:
    return len(times) / max(1e-9, max(times, default=began) - began)


def populate(target: Target, args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """Open every connection and pair the visitors, measuring memory on the way.

    The product: the first ``--queue`` visitors say hello while no counsellor is available
    (a full queue), then every counsellor goes available (assignment from a full queue),
    then the other visitors arrive and are assigned as they come. The raw relay pairs at
    hello: its counsellors are available first, and the same two hello bursts follow.
    ``--idle`` more visitor sockets are opened and say nothing (a start screen).
    """
    clients = target.clients
    assert clients is not None
    raw = target.name == "raw"
    p = args.clients
    out: dict[str, Any] = {"probe": clients.one("probe", {}, 30)}
    clients.one("warmup", {"counsellor": names[0]}, 60)
    time.sleep(args.settle)
    mem = {"base": memory(target)}
    per = [{"names": names[i::p], "available": raw} for i in range(p)]
    out["counsellors_seconds"] = max(r["seconds"] for r in clients.call("counsellors", per, 900))
    time.sleep(args.settle)
    mem["counsellors"] = memory(target)
    progress(f"{target.name}: {len(names)} counsellors logged in")
    mine = [len(range(i, args.visitors, p)) for i in range(p)]
    first = [len(range(i, min(args.queue, args.visitors), p)) for i in range(p)]
    per = [{"first": i, "count": mine[i], "tag": "c"} for i in range(p)]
    began = monotonic()
    clients.call("visitors", per, 900)
    per = [{"first": i, "count": len(range(i, args.idle, p)), "tag": "i"} for i in range(p)]
    clients.call("visitors", per, 900)
    out["visitors_connect_seconds"] = monotonic() - began
    time.sleep(args.settle)
    mem["sockets"] = memory(target)
    progress(f"{target.name}: {args.visitors + args.idle} visitor sockets open")

    def hello(lo: list[int], hi: list[int]) -> tuple[float, list[float]]:
        start = monotonic() + 0.3
        per = [
            {"lo": lo[i], "hi": hi[i], "start_at": start, "window": args.window, "timeout": 60.0}
            for i in range(p)
        ]
        got = clients.call("hello", per, 1800)
        return min(r["began"] for r in got), [t for r in got for t in r["welcomed"]]

    def assigned(lo: list[int], hi: list[int]) -> list[float]:
        per = [{"lo": lo[i], "hi": hi[i], "timeout": args.assign_timeout} for i in range(p)]
        got = clients.call("assigned", per, args.assign_timeout + 60)
        return [t for r in got for t in r["assigned"]]

    zero = [0] * p
    began, welcomed = hello(zero, first)
    out["queue_hello_per_s"] = _rate(welcomed, began)
    out["queue_welcomed"] = len(welcomed)
    progress(f"{target.name}: {len(welcomed)} visitors said hello")
    if not raw:
        time.sleep(args.settle)
        mem["waiting"] = memory(target)
        kwargs = {"start_at": monotonic() + 0.3, "window": args.window, "timeout": 60.0}
        went = clients.call("available", kwargs, 900)
        began = min(r["began"] for r in went)
        out["available"] = sum(r["available"] for r in went)
    times = assigned(zero, first)
    out["queue_assigned"] = len(times)
    out["assigned_per_s"] = _rate(times, began)
    out["queue_assign_seconds"] = max(times, default=began) - began
    progress(f"{target.name}: {len(times)} assigned from the queue")
    began, welcomed = hello(first, mine)
    times = assigned(first, mine)
    out["arrivals_welcomed"] = len(welcomed)
    out["arrivals_assigned"] = len(times)
    out["arrivals_hello_per_s"] = _rate(welcomed, began)
    out["arrivals_assigned_per_s"] = _rate(times, began)
    progress(f"{target.name}: {len(times)} more arrived and were assigned")
    time.sleep(args.settle)
    mem["paired"] = memory(target)
    state = clients.call("collect", {}, 60)
    target.errors = Counter(_merge(r["errors"] for r in state))
    out["errors"] = dict(target.errors)
    out["retries"] = _merge(r["retries"] for r in state)
    held = sum(r["open"] for r in state)
    out["memory"] = mem
    out["connections_held"] = held
    out["paired_visitors"] = out["queue_assigned"] + out["arrivals_assigned"]
    out |= _memory_per_connection(mem, held, len(names), args)
    return out


def _memory_per_connection(
    mem: dict[str, dict[str, int]], held: int, counsellors: int, args: argparse.Namespace
) -> dict[str, float]:
    """RSS growth per connection, and its parts: a counsellor, a bare visitor socket, and
    what a visitor's hello and pairing add to its socket."""

    def per(key: str, after: str, before: str, n: int) -> float:
        return (mem[after][key] - mem[before][key]) / max(1, n) / 1024

    sockets = args.visitors + args.idle
    out = {
        "rss_per_conn_kib": per("server_rss", "paired", "base", held),
        "redis_rss_per_conn_kib": per("redis_rss", "paired", "base", held),
        "rss_per_counsellor_kib": per("server_rss", "counsellors", "base", counsellors),
        "rss_per_visitor_socket_kib": per("server_rss", "sockets", "counsellors", sockets),
        "rss_per_pairing_kib": per("server_rss", "paired", "sockets", args.visitors),
        "redis_rss_per_pairing_kib": per("redis_rss", "paired", "sockets", args.visitors),
    }
    # If every visitor socket had said hello and been paired:
    grown = mem["paired"]["server_rss"] - mem["base"]["server_rss"]
    grown += args.idle * out["rss_per_pairing_kib"] * 1024
    out["rss_per_conn_all_paired_kib"] = grown / max(1, held) / 1024
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def measure(
    target: Target,
    command: str,
    per: list[dict[str, Any]],
    start: float,
    window: tuple[float, float],
    timeout: float,
) -> dict[str, Any]:
    """Run one load phase on every client; CPU read at the window's edges."""
    clients = target.clients
    assert clients is not None
    clients.send(command, per)
    _sleep_until(window[0])
    cpu0, client0, busy0 = target.cpu(), cpu_seconds(clients.pids), machine_busy()
    _sleep_until(window[1])
    cpu1, client1, busy1 = target.cpu(), cpu_seconds(clients.pids), machine_busy()
    done = clients.gather(timeout)
    time.sleep(0.3)
    got = clients.call("collect", {}, 60)
    recv = [t for r in got for t in r["recv"]]
    sent = [t for r in got for t in r["sent"]]
    lat = [(r - s) * 1000 for r, s in zip(recv, sent, strict=True) if window[0] <= s < window[1]]
    delivered = sum(window[0] <= r < window[1] for r in recv)
    seconds = window[1] - window[0]
    server, redis = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    per_msg = 1e6 / max(1, delivered)
    return {
        "delivered_per_s": delivered / seconds,
        "sent": sum(r["sent"] for r in done),
        "received": sum(s >= start for s in sent),
        "unanswered": sum(r["unanswered"] for r in done),
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "max_ms": max(lat, default=float("nan")),
        "samples": len(lat),
        "cpu_us_per_msg": (server + redis) * per_msg,
        "python_cpu_us_per_msg": server * per_msg,
        "redis_cpu_us_per_msg": redis * per_msg,
        "client_cpu_us_per_msg": (client1 - client0) * per_msg,
        "server_cores": (server + redis) / seconds,
        "client_cores": (client1 - client0) / seconds,
        "errors": _delta(target, got),
        "other_cores": (busy1 - busy0) / seconds - (server + redis + client1 - client0) / seconds,
        "order_faults": sum(r["order_faults"] for r in got),
        "acks_without_seq": sum(r["acks_without_seq"] for r in got),
        "open": sum(r["open"] for r in got),
    }


def _delta(target: Target, got: list[dict[str, Any]]) -> dict[str, int]:
    """Error frames since the last phase."""
    now = Counter(_merge(r["errors"] for r in got))
    delta = now - target.errors
    target.errors = now
    return dict(delta)


def _merge(counts: Iterator[dict[str, int]] | list[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return dict(total)


def idle(target: Target, args: argparse.Namespace) -> dict[str, float]:
    """CPU with every connection held and nothing said: the background (heartbeats,
    session checks, the assigner ...), which per-message figures at low rates include."""
    cpu0, busy0 = target.cpu(), machine_busy()
    time.sleep(args.seconds)
    cpu1, busy1 = target.cpu(), machine_busy()
    server = (cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1]) / args.seconds
    return {"server_cores": server, "other_cores": (busy1 - busy0) / args.seconds - server}


def open_loop(target: Target, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    p = args.clients
    start = monotonic() + 0.5
    length = args.warmup + args.seconds
    per = [
        {"rate": rate / p, "start_at": start + i / rate, "seconds": length, "drain": args.drain}
        for i in range(p)
    ]
    window = (start + args.warmup, start + length)
    return measure(target, "open_loop", per, start, window, length + args.drain + 60) | {
        "rate": rate
    }


def closed_loop(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    p = args.clients
    start = monotonic() + 0.5
    length = args.warmup + args.closed_seconds
    per = [
        {
            "inflight": len(range(i, args.inflight, p)),
            "start_at": start,
            "seconds": length,
            "drain": args.drain,
        }
        for i in range(p)
    ]
    window = (start + args.warmup, start + length)
    return measure(target, "closed_loop", per, start, window, length + args.drain + 60)


def profile(target: Target, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """py-spy on the product's Python processes during one extra closed-loop phase."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {"error": "py-spy not installed (pip install py-spy)"}
    out.mkdir(parents=True, exist_ok=True)
    workers = [p for p in target.server if "spawn_main" in _cmdline(p)] or target.server[:1]
    dump = subprocess.run([spy, "dump", "--pid", str(workers[0])], capture_output=True, text=True)
    result: dict[str, Any] = {"uvloop_in_stack": "uvloop" in dump.stdout}
    seconds = args.warmup + args.closed_seconds
    spies = []
    for pid in workers:
        path = out / f"{target.name}-{pid}.txt"
        spies.append(
            (
                path,
                subprocess.Popen(
                    [
                        spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--duration",
                        str(int(seconds)),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "--output",
                        str(path),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
            )
        )
    time.sleep(1.0)
    result["closed_loop_while_profiled"] = closed_loop(target, args)["delivered_per_s"]
    for _path, proc in spies:
        try:
            proc.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    result["files"] = [str(path) for path, _ in spies]
    result |= summarise_profile([path for path, _ in spies])
    return result


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


_LINE = re.compile(r":\d+\)$")


def summarise_profile(paths: list[Path], top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks, of the
    event loop's thread (executor threads waiting for work are left out)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = threads = 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_LINE.sub(")", f) for f in stack.split(";") if f]
            if frames and frames[0].startswith("Thread._bootstrap"):
                threads += count  # an executor thread waiting for work
                continue
            total += count
            if frames:
                own[frames[-1]] += count
            for f in set(frames):
                inclusive[f] += count
    share = 100.0 / max(1, total)
    return {
        "samples": total,
        "executor_thread_samples_left_out": threads,
        "self_percent": {f: round(n * share, 1) for f, n in own.most_common(top)},
        "inclusive_percent": {f: round(n * share, 1) for f, n in inclusive.most_common(top)},
    }


def log_summary(path: Path) -> dict[str, Any]:
    """Warnings and errors the server logged (JSON lines), by level and event."""
    events: Counter[str] = Counter()
    other = 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            other += 1 if line.strip() else 0
            continue
        if isinstance(entry, dict) and entry.get("level") in ("warning", "error", "critical"):
            events[f"{entry.get('level')}:{entry.get('event')}"] += 1
    return {"events": dict(events), "unparsed_lines": other}


# -- summary -------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    finite = sorted(v for v in values if not math.isnan(v))
    if not finite:
        return float("nan")
    mid = len(finite) // 2
    return finite[mid] if len(finite) % 2 else (finite[mid - 1] + finite[mid]) / 2


def summarise(run: dict[str, Any], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, t in run["targets"].items():
        s: dict[str, float] = {}
        sweeps = t["open_loop"]
        at = {rate: [rep[f"{rate:g}"] for rep in sweeps] for rate in args.rates}
        fixed = at[args.cpu_rate]
        for key in ("cpu_us_per_msg", "python_cpu_us_per_msg", "redis_cpu_us_per_msg"):
            s[key] = median([r[key] for r in fixed])
        s["idle_server_cores"] = median([r["server_cores"] for r in t["idle"]])
        s["marginal_cpu_us_per_msg"] = median(
            [(r["server_cores"] - s["idle_server_cores"]) / args.cpu_rate * 1e6 for r in fixed]
        )
        s["client_cpu_us_per_msg"] = median([r["client_cpu_us_per_msg"] for r in fixed])
        closed = t["closed_loop"]
        s["closed_loop_msg_per_s"] = median([r["delivered_per_s"] for r in closed])
        s["closed_loop_cpu_us_per_msg"] = median([r["cpu_us_per_msg"] for r in closed])
        s["closed_loop_p99_ms"] = median([r["p99_ms"] for r in closed])
        for rate in args.rates:
            s[f"p50_ms_at_{rate:g}"] = median([r["p50_ms"] for r in at[rate]])
            s[f"p99_ms_at_{rate:g}"] = median([r["p99_ms"] for r in at[rate]])
        pop = t["populate"]
        s["connections_held"] = float(pop["connections_held"])
        s["server_fds"] = float(pop["memory"]["paired"]["server_fds"])
        for key in (
            "rss_per_conn_kib",
            "rss_per_conn_all_paired_kib",
            "rss_per_counsellor_kib",
            "rss_per_visitor_socket_kib",
            "rss_per_pairing_kib",
            "redis_rss_per_conn_kib",
            "redis_rss_per_pairing_kib",
        ):
            s[key] = pop[key]
        s["paired_visitors"] = float(pop["paired_visitors"])
        s["assigned_per_s"] = pop["assigned_per_s"]
        s["queue_hello_per_s"] = pop["queue_hello_per_s"]
        s["arrivals_assigned_per_s"] = pop["arrivals_assigned_per_s"]
        out[name] = s
    return out


def ratios(summary: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    raw = summary.get("raw")
    out: dict[str, dict[str, float]] = {}
    for name, s in summary.items():
        if name == "raw" or raw is None:
            continue
        out[name] = {k: v / raw[k] for k, v in s.items() if raw.get(k)}  # not where raw has 0
    if "embedded" in summary and "workers2" in summary:
        w1 = summary["embedded"]["closed_loop_msg_per_s"]
        out["workers2"]["to_one_worker_throughput"] = (
            summary["workers2"]["closed_loop_msg_per_s"] / w1 if w1 else float("nan")
        )
    return out


def targets_met(summary: dict[str, Any], rat: dict[str, Any]) -> dict[str, Any]:
    e = summary.get("embedded")
    if e is None:
        return {}
    met: dict[str, Any] = {
        "connections_held_5000": e["connections_held"] >= 5000,
        "rss_per_conn_25kib": e["rss_per_conn_kib"] <= 25,
        "rss_per_conn_25kib_if_all_paired": e["rss_per_conn_all_paired_kib"] <= 25,
        "p99_at_1000_10ms": e.get("p99_ms_at_1000", math.inf) <= 10,
    }
    if "embedded" in rat:
        met["throughput_half_of_raw"] = rat["embedded"]["closed_loop_msg_per_s"] >= 0.5
        met["cpu_per_msg_at_most_twice_raw"] = rat["embedded"]["cpu_us_per_msg"] <= 2
    if "workers2" in rat:
        met["workers2_1_5x"] = rat["workers2"]["to_one_worker_throughput"] >= 1.5
    return met


ROWS = [
    ("cpu_us_per_msg", "server CPU per message @{cpu} msg/s, Redis incl. (µs)", "{:.0f}"),
    ("python_cpu_us_per_msg", "  of which Python processes (µs)", "{:.0f}"),
    ("redis_cpu_us_per_msg", "  of which Redis (µs)", "{:.0f}"),
    ("idle_server_cores", "  server CPU with no message at all (cores)", "{:.2f}"),
    ("marginal_cpu_us_per_msg", "  per message above that idle CPU (µs)", "{:.0f}"),
    ("closed_loop_msg_per_s", "relay throughput at saturation, closed loop (msg/s)", "{:.0f}"),
    ("closed_loop_cpu_us_per_msg", "  server CPU per message at saturation (µs)", "{:.0f}"),
    ("p99_ms_at_1000", "p99 latency @1000 msg/s (ms)", "{:.2f}"),
    ("p50_ms_at_1000", "p50 latency @1000 msg/s (ms)", "{:.2f}"),
    ("p50_ms_at_2000", "p50 latency @2000 msg/s (ms)", "{:.2f}"),
    ("p99_ms_at_2000", "p99 latency @2000 msg/s (ms)", "{:.2f}"),
    ("connections_held", "connections held (visitors + counsellors)", "{:.0f}"),
    ("paired_visitors", "  of which visitors paired with a counsellor", "{:.0f}"),
    ("server_fds", "  open files of the server process(es)", "{:.0f}"),
    ("rss_per_conn_kib", "server RSS per connection held, state incl. (KiB)", "{:.1f}"),
    ("rss_per_conn_all_paired_kib", "  the same if every visitor were paired (KiB)", "{:.1f}"),
    ("rss_per_counsellor_kib", "  per counsellor socket (KiB)", "{:.1f}"),
    ("rss_per_visitor_socket_kib", "  per visitor socket, before hello (KiB)", "{:.1f}"),
    ("rss_per_pairing_kib", "  added by a visitor's hello and pairing (KiB)", "{:.1f}"),
    ("redis_rss_per_conn_kib", "Redis RSS per connection held (KiB)", "{:.1f}"),
    ("redis_rss_per_pairing_kib", "  Redis RSS per paired visitor (KiB)", "{:.1f}"),
    ("assigned_per_s", "visitors assigned per second from a full queue of {queue}", "{:.0f}"),
    ("queue_hello_per_s", "  hello → welcome per second, filling that queue", "{:.0f}"),
    ("arrivals_assigned_per_s", "  arrivals hello → assigned per second, staff free", "{:.0f}"),
    ("client_cpu_us_per_msg", "client CPU per message @{cpu} msg/s (µs)", "{:.0f}"),
]


def table(run: dict[str, Any], args: argparse.Namespace) -> str:
    summary, rat = run["summary"], run["ratios"]
    names = [n for n in TARGETS if n in summary]
    cols = []
    for n in names:
        cols.append(LABELS[n])
        if n != "raw" and "raw" in summary:
            cols.append("× raw")
    lines = [f"{'figure':<56}" + "".join(f"{c:>22}" for c in cols)]
    cpu = f"{args.cpu_rate:g}"
    queue = min(args.queue, args.visitors)
    for key, label, fmt in ROWS:
        key = key.format(cpu=cpu)
        if not all(key in summary[n] for n in names):
            continue  # e.g. a rate not in this run's sweep
        cells = []
        for n in names:
            value = summary[n].get(key, float("nan"))
            cells.append(fmt.format(value))
            if n != "raw" and "raw" in summary:
                cells.append(f"{rat[n][key]:.2f}" if key in rat[n] else "–")
        label = label.format(cpu=cpu, queue=queue)
        lines.append(f"{label:<56}" + "".join(f"{c:>22}" for c in cells))
    if "workers2" in rat and "to_one_worker_throughput" in rat["workers2"]:
        lines.append(
            f"{'throughput --workers 2 / 1 worker':<56}"
            f"{rat['workers2']['to_one_worker_throughput']:>22.2f}"
        )
    lines.append("")
    lines.append("latency against offered load (p50 / p99 ms, median of repeats):")
    for n in names:
        sweep = " ".join(
            f"{r:g}:{summary[n][f'p50_ms_at_{r:g}']:.1f}/{summary[n][f'p99_ms_at_{r:g}']:.1f}"
            for r in args.rates
        )
        lines.append(f"  {LABELS[n]:<24} {sweep}")
    return "\n".join(lines)


def chart(run: dict[str, Any], args: argparse.Namespace, path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed (pip install -e '.[bench]'): no chart"
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = {"raw": "tab:grey", "embedded": "tab:blue", "workers2": "tab:orange"}
    for name, s in run["summary"].items():
        xs = list(args.rates)
        for q, style in (("p50", "--"), ("p99", "-")):
            ys = [s[f"{q}_ms_at_{r:g}"] for r in xs]
            ax.plot(xs, ys, style, marker="o", color=colours[name], label=f"{LABELS[name]} {q}")
    ax.set_xlabel("offered load (visitor messages per second)")
    ax.set_ylabel("latency, due time → delivered to counsellor (ms)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(
        f"{run['config']['connections']} connections held; {MALLOC}", fontsize=8, loc="left"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# -- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument(
        "--visitors", type=int, help="visitors paired with a counsellor (default 1500)"
    )
    parser.add_argument(
        "--idle", type=int, help="more visitor sockets that say nothing (default 3400)"
    )
    parser.add_argument("--clients", type=int, default=2, help="client processes per target")
    parser.add_argument(
        "--queue",
        type=int,
        help="visitors waiting when counsellors go available (default 500: a full queue "
        "at the default [queue] max_waiting)",
    )
    parser.add_argument("--rates", help="offered msg/s, comma-separated")
    parser.add_argument("--cpu-rate", type=float, help="fixed rate for CPU per message")
    parser.add_argument("--seconds", type=float, help="measured window per offered rate")
    parser.add_argument("--warmup", type=float, help="seconds of load before each window")
    parser.add_argument("--closed-seconds", type=float, help="closed-loop measured window")
    parser.add_argument("--inflight", type=int, help="closed-loop senders (one message each)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats")
    parser.add_argument("--drain", type=float, default=15.0, help="max wait for acks")
    parser.add_argument("--assign-timeout", type=float, default=300.0)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--json", type=Path, default=RESULTS / "capacity.json")
    parser.add_argument("--chart", type=Path, default=RESULTS / "latency.png")
    parser.add_argument("--logs", type=Path, default=RESULTS / "capacity-logs")
    parser.add_argument("--profile", type=Path, help="py-spy the product; stacks to this dir")
    parser.add_argument("--settle", type=float, help="seconds to let memory settle")
    parser.add_argument(
        "--window", type=int, default=32, help="hello/status frames in flight per client process"
    )
    args = parser.parse_args(argv)
    quick = {
        "visitors": 40,
        "idle": 10,
        "rates": "200,1000",
        "cpu_rate": 1000.0,
        "seconds": 1.0,
        "warmup": 0.3,
        "closed_seconds": 1.0,
        "inflight": 20,
        "repeats": 1,
        "settle": 0.2,
        "queue": 20,
    }
    full = {
        "visitors": 1500,
        "idle": 3400,
        "rates": "500,1000,2000,3000",
        "cpu_rate": 1000.0,
        "seconds": 4.0,
        "warmup": 1.0,
        "closed_seconds": 5.0,
        "inflight": 64,
        "repeats": 3,
        "settle": 2.0,
        "queue": 500,
    }
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.rates = sorted({float(r) for r in str(args.rates).split(",")} | {args.cpu_rate, 1000.0})
    args.targets = [t for t in args.targets.split(",") if t]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if args.visitors < args.clients:
        parser.error("--visitors must be at least --clients")
    return args


def _git(*args: str) -> str:
    """Read-only: which code was measured (others edit the tree while benchmarks run)."""
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, cwd=RESULTS.parent.parent
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    fds = capacity_client.raise_fd_limit()
    needed = math.ceil(args.visitors / capacity_client.CAPACITY)
    # A few spare: a hello answered "unavailable" may still have queued a conversation that
    # no socket owns, and it takes a counsellor's place when assigned (see the report).
    counsellors = needed + max(1, math.ceil(needed * 0.02))
    names = [f"cap{i}" for i in range(counsellors)]
    run: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.capacity", *sys.argv[1:]]),
        "malloc": MALLOC,
        "commit": _git("rev-parse", "HEAD"),
        "dirty_files": _git("status", "--porcelain").splitlines(),
        "config": {
            "visitors": args.visitors,
            "idle_visitor_sockets": args.idle,
            "queue": min(args.queue, args.visitors),
            "counsellors": counsellors,
            "capacity": capacity_client.CAPACITY,
            "connections": args.visitors + args.idle + counsellors,
            "client_processes": args.clients,
            "rates": args.rates,
            "cpu_rate": args.cpu_rate,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "closed_seconds": args.closed_seconds,
            "inflight": args.inflight,
            "repeats": args.repeats,
            "fd_soft_limit": fds,
        },
        "machine": {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()},
        "targets": {},
    }
    args.logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="capacity-") as tmp_name, contextlib.ExitStack() as st:
        tmp = Path(tmp_name)
        targets: list[Target] = []
        for name in args.targets:
            began = monotonic()
            target = st.enter_context(bring_up(name, args, tmp, args.logs, names))
            record: dict[str, Any] = {"label": LABELS[name], "setup": target.info}
            record["populate"] = populate(target, args, names)
            record["setup"]["seconds"] = monotonic() - began
            record["open_loop"], record["closed_loop"] = [], []
            run["targets"][name] = record
            targets.append(target)
            progress(f"{name}: up and populated in {monotonic() - began:.0f} s")
        for rep in range(args.repeats):  # interleaved: every target once per repeat
            for target in targets:
                record = run["targets"][target.name]
                record.setdefault("idle", []).append(idle(target, args))
                sweep = {f"{rate:g}": open_loop(target, rate, args) for rate in args.rates}
                record["open_loop"].append(sweep)
                record["closed_loop"].append(closed_loop(target, args))
            progress(f"repeat {rep + 1}/{args.repeats} done")
        if args.profile:
            for target in targets:
                if target.name != "raw":
                    run["targets"][target.name]["profile"] = profile(target, args, args.profile)
        for target in targets:
            clients = target.clients
            assert clients is not None
            final = clients.call("collect", {}, 60)
            run["targets"][target.name]["faults"] = {
                "open_at_end": sum(r["open"] for r in final),
                "errors": _merge(r["errors"] for r in final),
                "closes": _merge(r["closes"] for r in final),
                "order_faults": sum(r["order_faults"] for r in final),
                "acks_without_seq": sum(r["acks_without_seq"] for r in final),
                "frames": _merge(r["frames"] for r in final),
            }
    for name in run["targets"]:
        run["targets"][name]["log"] = log_summary(args.logs / f"{name}.log")
    run["machine"]["loadavg_after"] = os.getloadavg()
    run["summary"] = summarise(run, args)
    run["ratios"] = ratios(run["summary"])
    run["targets_met"] = targets_met(run["summary"], run["ratios"])
    run["figures"] = {
        f"{name}.{key}": value for name, s in run["summary"].items() for key, value in s.items()
    } | {
        f"{name}.ratio.{key}": value
        for name, s in run["ratios"].items()
        for key, value in s.items()
    }
    return run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # SIGTERM (e.g. from timeout) unwinds like Ctrl-C, so every process started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run = run_benchmark(args)
    note = chart(run, args, args.chart)
    run["chart"] = None if note else str(args.chart)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(run, indent=2, allow_nan=True))
    cfg = run["config"]
    print(
        f"{cfg['visitors']} visitors + {cfg['counsellors']} counsellors (capacity "
        f"{cfg['capacity']}) per target, {cfg['client_processes']} client processes each, "
        f"{cfg['repeats']} interleaved repeats; {MALLOC} for every server"
    )
    print(table(run, args))
    for name, t in run["targets"].items():
        faults, log = t["faults"], t["log"]
        print(
            f"{name}: open at end {faults['open_at_end']}, errors {faults['errors']}, "
            f"closes {faults['closes']}, order faults {faults['order_faults']}; "
            f"server log {log['events'] or 'clean'}"
        )
    print("targets met (product, 1 worker):", json.dumps(run["targets_met"]))
    print(f"JSON: {args.json}" + (f"; chart: {args.chart}" if not note else f"; {note}"))


if __name__ == "__main__":
    main()
