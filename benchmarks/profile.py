"""Where the time goes: the services sampled with py-spy under a steady open-loop load.

    python -m benchmarks.profile --rate 150 --seconds 30 --mix messages \\
        --services router,classifier,notifier --out .inbox/profiles

A fresh stack (as the benchmarks start it: every service, Meta's stand-in, each load shop's
Messenger channel connected), a load session's warm-up, then `--rate` events/s of `--mix` for
`--seconds`; after the first seconds of the phase, `py-spy record` samples each asked service
for the rest of it (non-blocking, so the service is not paused). Printed per service: its CPU
per event, the functions taking the most samples themselves, and the share of samples spent
under each suspect (validation and serialisation, the JSON library, the event loop, the
PostgreSQL and Kafka clients, …); and beside them, per event: transactions committed, rows
written, and each service's batch size (events consumed / batches made durable, from its
metrics). Each profile is kept as py-spy's raw (collapsed) stacks, and as speedscope JSON with
`--speedscope`.

py-spy counts a thread that can run, not one that runs: on a busy machine a thread woken from
epoll or preempted in a socket write (the loopback wakes the reader, which may take the CPU) is
sampled there while it waits for a CPU. Those waits are left out of the shares (the innermost
frame says so) or, with `--gil`, only the thread holding the GIL is sampled: Python's own work;
the kernel's share of each service's CPU is printed beside.

py-spy must be on the PATH or beside this Python (`pip install py-spy`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from benchmarks.stack import SERVICES, Stack, start_stack
from inbox.load.report import latency_summary
from inbox.load.runner import LoadSession
from inbox.load.traffic import Mix

ROOT = Path(__file__).resolve().parent.parent

#: What each suspect looks like in a stack: a frame whose text matches (`any`), or the innermost
#: frame (`leaf`: time spent in that code itself). A sample counts for every suspect it matches
#: (so the shares may add up to more than 100%).
SUSPECTS: dict[str, tuple[str, str]] = {
    "pydantic validation (model_validate*, construction)":
        ("any", r"^(\w+\.)?(model_validate\w*|__init__) \(pydantic/"),
    "pydantic serialisation (model_dump*)": ("any", r"^(\w+\.)?model_dump\w* \(pydantic/"),
    "pydantic, anything": ("any", r"\(pydantic(_core)?/"),
    "JSON library (json, orjson)": ("any", r"\((json/|orjson)"),
    "asyncpg (PostgreSQL client), with its socket writes": ("any", r"\(asyncpg/"),
    "aiokafka (Kafka client), with its socket writes": ("any", r"\(aiokafka/"),
    "socket writes (the transport's send: the kernel's loopback, waking the reader)":
        ("leaf", r"^_SelectorSocketTransport\.write "),
    "the event loop itself (scheduling, callbacks, reads; not waiting, not writes)":
        ("leaf", r"^(?!_SelectorSocketTransport\.write )\S+ \((asyncio/|selectors)"),
    "httpx / httpcore (HTTP client)": ("any", r"\((httpx|httpcore|h11)/"),
    "logging": ("any", r"\(logging/"),
    "prometheus_client": ("any", r"\(prometheus_client/"),
    "the topic model (features, linear model)": ("any", r"\(services/classifier/model/"),
    "numpy / scipy": ("any", r"\((numpy|scipy)/"),
}


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy not found: pip install py-spy")
    return found


async def record(pid: int, seconds: float, rate: int, out: Path, fmt: str, gil: bool) -> None:
    process = await asyncio.create_subprocess_exec(
        py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
        "--rate", str(rate), "--nonblocking", "--format", fmt, "--output", str(out),
        *(["--gil"] if gil else []),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"py-spy on {pid} failed: {err.decode(errors='replace')[-500:]}")


def read_collapsed(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw output: `frame;frame;… count`, outermost frame first."""
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames:
            stacks.append((frames.split(";"), int(count)))
    return stacks


#: A sample whose innermost frame is one of these is a thread waiting, not working: the event
#: loop in epoll (py-spy counts it while the thread is runnable, e.g. woken but not yet on a
#: CPU of a busy machine) or an idle worker thread.
WAITING = re.compile(r"^(EpollSelector\.select|_worker \(concurrent/futures/thread|"
                     r"\w+\.wait \(threading)")


def _project(frame: str) -> bool:
    """A frame of the project's own code (py-spy shows paths from a package root)."""
    found = re.search(r"\(([\w/]+\.py)", frame)
    return bool(found) and any((root / found[1]).exists() for root in (ROOT, ROOT / "shared"))


def _function(frame: str) -> str:
    """`name (file:line)` without the line: a function, wherever in it the sample fell."""
    return re.sub(r":\d+\)$", ")", frame)


def analyse(stacks: list[tuple[list[str], int]], top: int = 12) -> dict[str, Any]:
    waiting = sum(count for frames, count in stacks if WAITING.search(frames[-1]))
    stacks = [(frames, count) for frames, count in stacks if not WAITING.search(frames[-1])]
    total = sum(count for _, count in stacks) or 1
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    suspects: Counter[str] = Counter()
    patterns = {name: (mode, re.compile(p)) for name, (mode, p) in SUSPECTS.items()}
    for frames, count in stacks:
        own[_function(frames[-1])] += count
        for function in {_function(f) for f in frames}:
            under[function] += count
        for name, (mode, pattern) in patterns.items():
            if any(pattern.search(f) for f in (frames[-1:] if mode == "leaf" else frames)):
                suspects[name] += count

    def share(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(n)]

    project = Counter({k: v for k, v in under.items()
                       if _project(k) and not k.startswith("<module>")})
    return {"samples": total, "waiting_samples": waiting, "self": share(own, top),
            "project_inclusive": share(project, top),
            "suspects": {k: round(100 * suspects[k] / total, 1) for k in SUSPECTS}}


async def metrics(stack: Stack) -> dict[str, dict[str, float]]:
    """Per service: events consumed and batches made durable (each summed over topics)."""
    found: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for service in stack.services:
            text = (await client.get(f"http://127.0.0.1:{service.port}/metrics")).text
            part = found.setdefault(service.name, {"consumed": 0.0, "batches": 0.0,
                                                   "handle_seconds": 0.0})
            for line in text.splitlines():
                name, _, value = line.rpartition(" ")
                if name.startswith("inbox_events_consumed_total{"):
                    part["consumed"] += float(value)
                elif name.startswith("inbox_handle_duration_seconds_count{"):
                    part["batches"] += float(value)
                elif name.startswith("inbox_handle_duration_seconds_sum{"):
                    part["handle_seconds"] += float(value)
    return found


async def database_counts(url: str) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """SELECT (SELECT xact_commit FROM pg_stat_database
                       WHERE datname = current_database()) AS commits,
                      (SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables)
                          AS rows_written,
                      (SELECT sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0))
                       FROM pg_stat_user_tables) AS scans""")
        return {k: float(v or 0) for k, v in dict(row).items()}
    finally:
        await conn.close()


def user_system(stack: Stack) -> dict[str, tuple[float, float]]:
    """Per service: CPU seconds in user space and in the kernel (sockets are the kernel's)."""
    found: dict[str, tuple[float, float]] = {}
    for service in stack.services:
        times = psutil.Process(service.process.pid).cpu_times()
        user, system = found.get(service.name, (0.0, 0.0))
        found[service.name] = (user + times.user, system + times.system)
    return found


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


async def profile(args: argparse.Namespace) -> dict[str, Any]:
    wanted = [s for s in args.services.split(",") if s]
    unknown = set(wanted) - set(SERVICES)
    if unknown:
        raise SystemExit(f"unknown services: {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    stack = await start_stack(SERVICES, partitions=args.partitions)
    try:
        async with LoadSession(stack.settings, shops=args.shops, progress=False,
                               new_thread_share=0.8 if args.mix == "replies" else 0.3,
                               gateway_url=stack.url("gateway"),
                               graph_url=stack.graph_url) as session:
            if args.mix == "replies":  # conversations to reply to
                await session.phase(args.rate, 3.0, Mix.parse("messages"), grace=30.0,
                                    settle=0.2)
            fmt = "speedscope" if args.speedscope else "raw"
            files = {name: args.out / f"{name}.{'speedscope.json' if args.speedscope else 'txt'}"
                     for name in wanted}
            delay = min(3.0, args.seconds / 4)
            sampled = args.seconds - delay - 0.5

            async def sample() -> None:
                await asyncio.sleep(delay)  # the phase's start, not the warm-up, is sampled
                await asyncio.gather(*[record(stack.pids(name)[0], sampled, args.sample_rate,
                                              files[name], fmt, args.gil)
                                       for name in wanted])

            cpu_before, db_before = stack.cpu_seconds(), await database_counts(
                stack.settings.database.url)
            metrics_before = await metrics(stack)
            split_before = user_system(stack)
            sampling = asyncio.create_task(sample())
            started = time.perf_counter()
            report = await session.phase(args.rate, args.seconds, Mix.parse(args.mix),
                                         grace=60.0, settle=0.5)
            await sampling
            elapsed = time.perf_counter() - started
            cpu_after, db_after = stack.cpu_seconds(), await database_counts(
                stack.settings.database.url)
            metrics_after = await metrics(stack)
            split_after = user_system(stack)
    finally:
        stack.stop()
    events = max(1, sum(report.sent.values()))
    cpu = {k: round(v * 1000 / events, 3) for k, v in _delta(cpu_after, cpu_before).items()}
    batches = {}
    for name, after in metrics_after.items():
        d = _delta(after, metrics_before.get(name, {}))
        if d["batches"]:
            batches[name] = {"events_per_batch": round(d["consumed"] / d["batches"], 1),
                             "ms_per_batch": round(1000 * d["handle_seconds"] / d["batches"], 2)}
    kernel = {}
    for name, (user, system) in split_after.items():
        u0, s0 = split_before.get(name, (0.0, 0.0))
        if user + system - u0 - s0 > 0:
            kernel[name] = round(100 * (system - s0) / (user + system - u0 - s0), 1)
    db = {k: round(v / events, 2) for k, v in _delta(db_after, db_before).items()}
    results: dict[str, Any] = {
        "partitions": args.partitions, "rate": args.rate, "seconds": args.seconds,
        "mix": args.mix, "events": events,
        "elapsed_seconds": round(elapsed, 1), "sampled_seconds": round(sampled, 1),
        "sample_rate": args.sample_rate, "gil_only": args.gil, "lost": report.lost,
        "duplicated": report.duplicated,
        "p99_ms": {name: latency_summary(p.latencies)["p99_ms"]
                   for name, p in report.paths.items()},
        "cpu_ms_per_event": cpu, "kernel_share_percent": kernel, "database_per_event": db,
        "batches": batches, "profiles": {},
    }
    if not args.speedscope:
        for name, path in files.items():
            results["profiles"][name] = analyse(read_collapsed(path))
    return results


def say_results(results: dict[str, Any]) -> None:
    print(f"{results['events']:,} events ({results['mix']}) at {results['rate']:g}/s, "
          f"{results['partitions']} partitions a topic, for "
          f"{results['seconds']:g}s; sampled {results['sampled_seconds']}s at "
          f"{results['sample_rate']} Hz{' (GIL holder only)' if results['gil_only'] else ''}; "
          f"lost {results['lost']}, duplicated "
          f"{results['duplicated']}; p99 {results['p99_ms']}")
    print("CPU ms per event: " + ", ".join(f"{k} {v}" for k, v in
                                          sorted(results["cpu_ms_per_event"].items(),
                                                 key=lambda kv: -kv[1])))
    print("share of each service's CPU in the kernel (%): " + ", ".join(
        f"{k} {v}" for k, v in results["kernel_share_percent"].items()))
    print("PostgreSQL per event: " + ", ".join(f"{k} {v}" for k, v in
                                              results["database_per_event"].items()))
    print("batches: " + "; ".join(f"{k} {v['events_per_batch']} events, {v['ms_per_batch']} ms"
                                  for k, v in results["batches"].items()))
    for name, found in results["profiles"].items():
        print(f"\n{name}: {found['samples']:,} samples working (shares below are of "
              f"these), {found['waiting_samples']:,} more waiting in epoll or idle threads")
        print("  most samples in the function itself:")
        for function, share in found["self"]:
            print(f"    {share:>5}%  {function}")
        print("  the project's functions, with what they call:")
        for function, share in found["project_inclusive"]:
            print(f"    {share:>5}%  {function}")
        print("  under each suspect:")
        for suspect, share in found["suspects"].items():
            if share:
                print(f"    {share:>5}%  {suspect}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=150.0, help="events/s (default 150)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load")
    parser.add_argument("--mix", default="messages", help="messages, replies, default, …")
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--services", default="router,classifier,notifier",
                        help=f"comma-separated, of: {', '.join(SERVICES)}")
    parser.add_argument("--partitions", type=int, default=8,
                        help="partitions per topic (default 8, as the benchmarks)")
    parser.add_argument("--sample-rate", type=int, default=200, help="py-spy samples/s")
    parser.add_argument("--gil", action="store_true",
                        help="only the thread holding the GIL (Python's own CPU: a thread "
                             "preempted in a socket write, or waiting, is not counted)")
    parser.add_argument("--speedscope", action="store_true",
                        help="keep speedscope JSON instead of collapsed stacks (no summary)")
    parser.add_argument("--out", type=Path, default=ROOT / ".inbox" / "profiles")
    args = parser.parse_args(argv)
    Mix.parse(args.mix)
    results = asyncio.run(profile(args))
    say_results(results)
    (args.out / "profile.json").write_text(json.dumps(results, indent=2))
    print(f"\nprofiles and figures in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
