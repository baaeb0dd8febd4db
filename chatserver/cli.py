"""The ``chatserver`` command line: serve, staff (add, totp, list, disable, enable, passwd,
set), purge, audit, check-text, simulate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import importlib
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from aiohttp import web

from chatserver.config import Settings, load_settings
from chatserver.embedded import answers, die_with_parent, private_redis, socket_path
from chatserver.errors import ConfigError
from chatserver.keys import Keys
from chatserver.logs import configure_logging
from chatserver.redisconn import connect
from chatserver.store import Store

DEFAULT_DATA_DIR = "./chatserver-data"


def _add_store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="use this Redis (default: a private one in --data-dir)",
    )
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, type=Path)
    p.add_argument("--config", type=Path, help="TOML configuration file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", default="1", help="number of processes, or 'auto'")
    serve.add_argument("--log-level", default="info")
    _add_store_options(serve)
    staff = sub.add_parser("staff", help="manage staff accounts")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add", help="make a staff account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["counsellor", "supervisor", "admin"])
    add.add_argument("--display-name", required=True)
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.add_argument("--skills", default="", help="comma-separated topic ids")
    add.add_argument("--trainee", action="store_true")
    _add_store_options(add)
    totp = staff_sub.add_parser("totp", help="give an account a new TOTP second factor")
    totp.add_argument("username")
    _add_store_options(totp)
    listing = staff_sub.add_parser("list", help="print every staff account as JSON lines")
    _add_store_options(listing)
    for name, what in (
        ("disable", "disable an account: no login, its sessions and sockets ended"),
        ("enable", "enable a disabled account again"),
    ):
        toggle = staff_sub.add_parser(name, help=what)
        toggle.add_argument("username")
        _add_store_options(toggle)
    passwd = staff_sub.add_parser("passwd", help="set a new password (ends its sessions)")
    passwd.add_argument("username")
    passwd.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (also when it is not a terminal)",
    )
    _add_store_options(passwd)
    change = staff_sub.add_parser("set", help="change display name, skills or trainee flag")
    change.add_argument("username")
    change.add_argument("--display-name")
    change.add_argument("--skills", help="comma-separated topic ids (empty: none)")
    change.add_argument("--trainee", action=argparse.BooleanOptionalAction, default=None)
    _add_store_options(change)
    sub.add_parser("check-text", help="moderation rules on one text per line of stdin")
    purge = sub.add_parser("purge", help="delete transcripts past retention now")
    _add_store_options(purge)
    audit = sub.add_parser("audit", help="print the supervision audit log as JSON lines")
    audit.add_argument("--since", type=float, default=0.0, help="Unix seconds (default: all)")
    _add_store_options(audit)
    sim = sub.add_parser("simulate", help="staffing simulator (see --help)", add_help=False)
    sim.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


@contextlib.contextmanager
def redis_for(
    url: str | None, data_dir: Path, *, reuse_running: bool, appendfsync: str = "everysec"
) -> Iterator[str]:
    """The Redis URL to use: the given one, the running service's private one, or a new one."""
    if url:
        yield url
        return
    sock = socket_path(data_dir)
    if reuse_running and answers(sock):
        yield f"unix://{sock}"
        return
    with private_redis(data_dir, appendfsync) as private_url:
        yield private_url


# -- serve --------------------------------------------------------------------------

GC_THRESHOLDS = (7_000, 20, 100)
GC_FREEZE_SECONDS = 0.25
GC_UNFREEZE_EVERY = 14_400  # freezes: a whole collection of everything about once an hour


async def tune_gc(
    freeze_seconds: float = GC_FREEZE_SECONDS, unfreeze_every: int = GC_UNFREEZE_EVERY
) -> None:
    """Keep the cyclic garbage collector from stalling the serve process's loop; runs until
    cancelled. Call it once the app is set up, before clients come.

    A collection walks every tracked object of the generations it collects: a whole one at
    5,000 connections ~585k objects, a ~300-370 ms pause that decided the p99 latency. So:
    collect the start-up garbage once and ``gc.freeze()`` what is left (modules, the app:
    alive for good), which takes it out of every later collection; raise the thresholds
    from (700, 10, 10) — gen 0 collections mostly find nothing here (refcounting frees a
    frame's dicts) — and then every ``freeze_seconds`` collect the young generations only
    (``gc.collect(1)``: what survived since the last tick, bounded by the thresholds) and
    freeze what is left. So the unfrozen objects never pile up: no tick and no automatic
    collection walks more than a quarter of a second of survivors, however fast connections
    come (an earlier version froze once a minute with a whole collection, and the first tick
    walked every connection opened in that minute: a 291 ms pause in the benchmark; with a
    1 s tick, each walked 20-50k young objects at 1,000-3,000 msg/s, 10-15 ms; at 0.25 s
    10-17k, 5-12 ms: dicts the collector untracked come back to gen 0 when they get a
    container, so a tick is never empty). What dies by
    its reference count is freed at once, frozen or not; what
    dies in a cycle after being frozen (a closed connection, say) is reclaimed by the whole
    collection after ``gc.unfreeze()`` every ``unfreeze_every`` ticks: one pause an hour,
    and memory stays bounded by an hour's garbage. Freezing is O(1)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    count = 0
    while True:
        await asyncio.sleep(freeze_seconds)
        count += 1
        if count % unfreeze_every == 0:
            gc.unfreeze()
            gc.collect()
        else:
            gc.collect(1)
        gc.freeze()


#: Seconds above which aiohttp may round a timer up to a whole second: beyond any of ours.
TIMER_ROUNDING_ABOVE = 3600.0


async def _serve_async(
    settings: Settings, redis_url: str, host: str, port: int, reuse_port: bool
) -> None:
    from chatserver import loopwatch
    from chatserver.app import create_app

    app = create_app(settings, redis_url)
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=settings.server.shutdown_grace_seconds,
        # aiohttp rounds every timer of 5 s or more up to a whole second, which would line
        # the sockets' spread-out heartbeats (sockets.heartbeat_interval) up again: a burst
        # of pings at every second. Left unrounded, they stay spread.
        timeout_ceil_threshold=TIMER_ROUNDING_ABOVE,
    )
    await runner.setup()
    # The loop's lag and every collection timed (tune_gc's first one included) for /metrics
    # and the log: this process only, like tune_gc.
    loopwatch.WATCH.install_gc()
    watch_task = asyncio.create_task(loopwatch.WATCH.run())
    # This process only (in-process test servers keep the defaults). Its first step, run by
    # the sleep(0), collects and freezes what start-up left before clients come.
    gc_task = asyncio.create_task(tune_gc())
    await asyncio.sleep(0)
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    import structlog

    structlog.get_logger("chatserver").info("serving", port=port, pid=os.getpid())
    await stop.wait()
    gc_task.cancel()
    watch_task.cancel()
    await runner.cleanup()


def run_worker(
    settings_path: str | None,
    redis_url: str,
    host: str,
    port: int,
    log_level: str,
    reuse_port: bool,
    parent: int | None = None,
) -> None:
    if parent is not None:  # a worker of --workers N: end with the process that started it
        tie = die_with_parent(parent)
        if tie is not None:
            tie()
    configure_logging(log_level)
    settings = load_settings(settings_path)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:
            asyncio.run(_serve_async(settings, redis_url, host, port, reuse_port))
        else:
            uvloop.run(_serve_async(settings, redis_url, host, port, reuse_port))


def parse_workers(value: str) -> int:
    """``--workers``: a whole number of processes, or ``auto`` for one per core."""
    if value == "auto":  # the cores this process may run on (affinity, cpusets)
        return (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1)
        )
    try:
        workers = int(value)
    except ValueError:
        raise ConfigError("--workers takes a whole number or 'auto'") from None
    if workers < 1:
        raise ConfigError("--workers must be 1 or more, or 'auto'")
    return workers


def cmd_serve(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    settings = load_settings(args.config)  # refuse a bad file before anything starts
    workers = parse_workers(args.workers)
    config = str(args.config) if args.config else None
    fsync = settings.redis.appendfsync
    with redis_for(args.redis_url, args.data_dir, reuse_running=False, appendfsync=fsync) as url:
        if workers == 1:
            run_worker(config, url, args.host, args.port, args.log_level, False)
            return 0
        ctx = multiprocessing.get_context("spawn")
        procs = [
            ctx.Process(
                target=run_worker,
                name=f"worker-{i}",
                args=(config, url, args.host, args.port, args.log_level, True, os.getpid()),
            )
            for i in range(workers)
        ]
        for p in procs:
            p.start()

        def forward(signum: int, frame: object) -> None:
            for p in procs:
                if p.is_alive() and p.pid:
                    os.kill(p.pid, signal.SIGTERM)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        for p in procs:
            p.join()
    return 0


# -- staff ----------------------------------------------------------------------------


async def _with_store(
    args: argparse.Namespace, url: str, action: Callable[[Store, Settings], Awaitable[None]]
) -> None:
    settings = load_settings(args.config)
    text = connect(url, decode=True)
    binary = connect(url, decode=False)
    try:
        await action(Store(text, binary, Keys(settings.server.key_prefix)), settings)
    finally:
        await text.aclose()
        await binary.aclose()


def _skills(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _read_password(args: argparse.Namespace) -> str:
    """From standard input with ``--password-stdin`` (``passwd``: also when stdin is not a
    terminal), else prompted (``passwd``: twice, both must match)."""
    if args.password_stdin or (args.staff_command == "passwd" and not sys.stdin.isatty()):
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if args.staff_command == "passwd" and getpass.getpass("Again: ") != password:
        raise ValueError("the two passwords differ")
    return password


def cmd_staff(args: argparse.Namespace) -> int:
    from chatserver.auth import (
        AccountExists,
        NoSuchAccount,
        Role,
        add_staff,
        check_skills,
        enable_totp,
        totp_uri,
    )

    if args.staff_command in LIFETIME:
        return cmd_staff_lifetime(args)
    try:
        password = _read_password(args) if args.staff_command == "add" else ""
    except ValueError as exc:
        print(f"chatserver: {exc}", file=sys.stderr)
        return 2

    async def add(store: Store, settings: Settings) -> None:
        skills = _skills(args.skills)
        check_skills(skills, _topic_ids(settings))
        member = await add_staff(
            store, args.username, password, Role(args.role), args.display_name, skills, args.trainee
        )
        await store.audit("cli", "operator", "staff_add", "", {"staff_id": member.staff_id})
        out = {"staff_id": member.staff_id, "username": member.username, "role": member.role.value}
        if member.role.value in settings.auth.totp_roles:
            secret = await enable_totp(store, args.username)
            out |= {"totp_secret": secret, "totp_uri": totp_uri(secret, args.username)}
        print(json.dumps(out))

    async def totp(store: Store, settings: Settings) -> None:
        secret = await enable_totp(store, args.username)
        print(
            json.dumps(
                {
                    "username": args.username,
                    "totp_secret": secret,
                    "totp_uri": totp_uri(secret, args.username),
                }
            )
        )

    try:
        with redis_for(args.redis_url, args.data_dir, reuse_running=True) as url:
            asyncio.run(_with_store(args, url, add if args.staff_command == "add" else totp))
    except AccountExists:
        print(f"chatserver: an account named {args.username!r} exists already", file=sys.stderr)
        return 1
    except (ValueError, NoSuchAccount) as exc:
        print(f"chatserver: {exc}", file=sys.stderr)
        return 2
    return 0


#: ``staff`` subcommands for an account's lifetime after ``add``.
LIFETIME = ("list", "disable", "enable", "passwd", "set")


def _topic_ids(settings: Settings) -> list[str]:
    from queueing.topics import topics_for

    return [t.id for t in topics_for(settings.topics)]


def cmd_staff_lifetime(args: argparse.Namespace) -> int:
    """``staff list|disable|enable|passwd|set``: prints JSON, audits each change (actor
    ``cli``, role ``operator``; ids only); 2 for a bad value or an unknown username."""
    from chatserver.auth import (
        NoSuchAccount,
        public_account,
        reset_password,
        set_disabled,
        update_profile,
    )

    command = args.staff_command
    try:
        password = _read_password(args) if command == "passwd" else ""
    except ValueError as exc:
        print(f"chatserver: {exc}", file=sys.stderr)
        return 2

    async def run(store: Store, settings: Settings) -> None:
        if command == "list":
            for account in sorted(await store.all_accounts(), key=lambda a: a["username"]):
                print(json.dumps(public_account(account), ensure_ascii=False))
            return
        found = await store.account(args.username)
        if found is None:
            raise NoSuchAccount(f"no account named {args.username!r}")
        staff_id = found["id"]
        if command in ("disable", "enable"):
            await set_disabled(store, staff_id, command == "disable")
            action = f"staff_{command}"
        elif command == "passwd":
            await reset_password(store, staff_id, password)
            action = "staff_password"
        else:
            await update_profile(
                store,
                staff_id,
                _topic_ids(settings),
                display_name=args.display_name,
                skills=None if args.skills is None else _skills(args.skills),
                trainee=args.trainee,
            )
            action = "staff_update"
        await store.audit("cli", "operator", action, "", {"staff_id": staff_id})
        print(json.dumps(public_account(await store.account(args.username) or {})))

    try:
        with redis_for(args.redis_url, args.data_dir, reuse_running=True) as url:
            asyncio.run(_with_store(args, url, run))
    except (ValueError, NoSuchAccount) as exc:
        print(f"chatserver: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    import time

    from chatserver.retention import purge

    configure_logging("warning")  # log lines go to stderr; stdout is the JSON answer

    async def run(store: Store, settings: Settings) -> None:
        retention = settings.retention
        n = await purge(store, time.time(), retention.transcripts_days, retention.statistics_days)
        print(json.dumps({"purged": n}))

    with redis_for(args.redis_url, args.data_dir, reuse_running=True) as url:
        asyncio.run(_with_store(args, url, run))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    async def dump(store: Store, settings: Settings) -> None:
        for entry in await store.audit_entries(since=args.since, count=1_000_000):
            print(json.dumps(entry, ensure_ascii=False))

    with redis_for(args.redis_url, args.data_dir, reuse_running=True) as url:
        asyncio.run(_with_store(args, url, dump))
    return 0


def cmd_check_text() -> int:
    from moderation import analyse

    for line in sys.stdin:
        print(json.dumps(analyse(line.rstrip("\n")).to_json_dict(), ensure_ascii=False), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        try:
            simulator = importlib.import_module("queueing.simulate_cli")
        except ImportError:
            print(
                "chatserver: the staffing simulator is not part of this build yet", file=sys.stderr
            )
            return 2
        return int(simulator.main(argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "staff":
            return cmd_staff(args)
        if args.command == "purge":
            return cmd_purge(args)
        if args.command == "audit":
            return cmd_audit(args)
        if args.command == "check-text":
            return cmd_check_text()
    except ConfigError as exc:
        print(f"chatserver: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
