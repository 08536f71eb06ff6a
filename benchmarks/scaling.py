"""Scaling curves: how a loop's cost grows with idle connections and pending timers,
and what an idle connection and a pending task cost in memory.

Usage::

    python benchmarks/scaling.py [--rounds N] [--quick] [--impls A,B] [--only KIND]
                                 [--cpu C] [--extra-path DIR] [--no-save]

Kinds (each point is one fresh process per implementation, interleaved and
rotated round by round as in ``run.py``):

``idle``    echo throughput of ``ACTIVE`` (10) connections, 1 KiB round trips from
            the C load client of ``tcp_echo.py``, while 10 / 1,000 / 10,000 other
            connections to the same protocol server sit idle (each one a transport
            with its socket registered for reading). The idle peers live in a
            separate helper process, so the server holds only its own ends
            (RLIMIT_NOFILE's soft limit is raised to the hard one in both).
            Figure: the server's CPU µs per round trip and round trips/s.
``timers``  cost of one timer that is armed and fires (``call_later`` with a delay
            spread over 2 ms, then run) while 1e3 / 1e4 / 1e5 / 1e6 far-off timers
            are pending. Figure: CPU µs per timer.
``memory``  resident memory (``/proc/self/statm``) added per idle server-side
            connection (10,000 of them; the client ends are in the helper process)
            and per pending task (100,000 tasks each awaiting a future; the
            coroutine frames are the same code in every implementation).

Method: setup (pending timers, idle connections) is outside the timed region;
a warm-up of the same size runs at the same scale first; GC is disabled in the
timed region. Ratios: the per-round ratio of each implementation to stdlib asyncio
(CPU), median and min-max, as in ``run.py``; for memory, bytes per object (median).
The summary goes to ``benchmarks/results/scaling-<UTC time>.json`` (which
``run.py --chart`` also plots) unless ``--no-save``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import tcp_echo  # noqa: E402
from child import IMPLS, runner_for  # noqa: E402

#: Connections carrying the load in ``idle``.
ACTIVE = 10
IDLE_POINTS = (10, 1_000, 10_000)
TIMER_POINTS = (1_000, 10_000, 100_000, 1_000_000)
#: Round trips timed per ``idle`` point; timers timed per ``timers`` point.
IDLE_TRIPS = 40_000
TIMER_OPS = 50_000
MEM_CONNS = 10_000
MEM_TASKS = 100_000
QUICK = {"idle": (IDLE_POINTS[:2], 2_000), "timers": (TIMER_POINTS[:2], 2_000)}
RESULTS_DIR = os.path.join(HERE, "results")

# -- the idle-peer helper process ---------------------------------------------

_HOLDER = r"""
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for _ in range(n):
    s = socket.create_connection((host, port))
    held.append(s)
sys.stdout.write("ready\n")
sys.stdout.flush()
sys.stdin.read()  # hold them until the parent closes our stdin
"""


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Counting:
    """An echo protocol that counts its connections (for the idle ones too)."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.state["open"] += 1
        self.state["transports"].append(transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.state["open"] -= 1


async def _wait_until(aio: Any, pred: Any, what: str, limit: float = 60.0) -> None:
    loop = aio.get_running_loop()
    deadline = loop.time() + limit
    while not pred():
        if loop.time() > deadline:
            raise TimeoutError(f"scaling: gave up waiting for {what}")
        await aio.sleep(0.005)


async def _with_idle(aio: Any, idle: int, work: Any) -> Any:
    """Run ``work(server, state)`` while *idle* accepted connections sit idle."""
    _raise_nofile()
    loop = aio.get_running_loop()
    state: dict[str, Any] = {"open": 0, "transports": []}
    server = await loop.create_server(lambda: _Counting(state), "127.0.0.1", 0, backlog=4096)
    host, port = server.sockets[0].getsockname()[:2]
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, host, str(port), str(idle)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        await _wait_until(aio, lambda: state["open"] >= idle, f"{idle} idle connections")
        result = await work(server, state)
        if state["open"] < idle:
            raise AssertionError(f"idle connections dropped: {state['open']} of {idle} open")
        return result
    finally:
        holder.stdin.close()  # type: ignore[union-attr]
        holder.wait(timeout=30)
        holder.stdout.close()  # type: ignore[union-attr]
        for transport in state["transports"]:
            transport.abort()
        server.close()
        await server.wait_closed()


async def _echo_trips(aio: Any, server: Any, state: dict[str, Any], trips: int) -> None:
    host, port = server.sockets[0].getsockname()[:2]
    saved = tcp_echo.CONNS
    tcp_echo.CONNS = ACTIVE
    try:
        cmd = tcp_echo.client_command(["--tcp", host, str(port)], trips, 1024)
    finally:
        tcp_echo.CONNS = saved
    before = state["open"]
    client = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    loop = aio.get_running_loop()
    deadline = loop.time() + 120
    while client.poll() is None:
        if loop.time() > deadline:
            client.kill()
            raise TimeoutError("scaling: echo client did not finish")
        await aio.sleep(0.002)
    out, err = client.communicate()
    lines = out.strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if client.returncode != 0 or report.get("round_trips") != trips:
        raise AssertionError(f"echo client: status {client.returncode}, {report}, {err[-300:]!r}")
    # the active connections are closed by the client; wait for our ends to go
    await _wait_until(aio, lambda: state["open"] <= before, "the active connections to close")


def _timed(fn: Any) -> Any:
    async def run(*args: Any) -> dict[str, float]:
        gc.collect()
        gc.disable()
        try:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await fn(*args)
            return {"cpu": time.process_time() - cpu0, "wall": time.perf_counter() - wall0}
        finally:
            gc.enable()

    return run


async def point_idle(aio: Any, idle: int, trips: int) -> dict[str, Any]:
    """Round trips of ``ACTIVE`` connections among *idle* idle ones."""

    async def work(server: Any, state: dict[str, Any]) -> dict[str, Any]:
        await _echo_trips(aio, server, state, trips)  # warm-up, same scale
        timing = await _timed(_echo_trips)(aio, server, state, trips)
        return {"ops": trips, **timing}

    return await _with_idle(aio, idle, work)


async def _fire_timers(aio: Any, ops: int) -> None:
    loop = aio.get_running_loop()
    done = loop.create_future()
    left = ops

    def fire() -> None:
        nonlocal left
        left -= 1
        if not left:
            done.set_result(None)

    call_later = loop.call_later
    for i in range(ops):
        call_later(((i * 7919) % 2000) * 1e-6, fire)
    await done


def _never() -> None:
    raise AssertionError("a far-off timer fired")


async def point_timers(aio: Any, pending: int, ops: int) -> dict[str, Any]:
    """*ops* timers armed and fired while *pending* far-off timers wait."""
    loop = aio.get_running_loop()
    far = [loop.call_later(3600.0 + (i % 997), _never) for i in range(pending)]
    try:
        await _fire_timers(aio, ops)  # warm-up
        timing = await _timed(_fire_timers)(aio, ops)
    finally:
        for handle in far:
            handle.cancel()
    return {"ops": ops, **timing}


async def point_memory(aio: Any, conns: int, tasks: int) -> dict[str, Any]:
    """Resident bytes added per idle server-side connection and per pending task."""
    gc.collect()
    base = _rss()
    measured: dict[str, Any] = {}

    async def work(server: Any, state: dict[str, Any]) -> None:
        gc.collect()
        measured["bytes_per_conn"] = (_rss() - base) / conns

    await _with_idle(aio, conns, work)
    loop = aio.get_running_loop()
    gate = loop.create_future()

    async def waiter() -> None:
        await gate

    gc.collect()
    base = _rss()
    pending = [aio.create_task(waiter()) for _ in range(tasks)]
    await aio.sleep(0)  # every task has started and waits on the gate
    gc.collect()
    measured["bytes_per_task"] = (_rss() - base) / tasks
    gate.set_result(None)
    await aio.gather(*pending)
    return measured


# -- child --------------------------------------------------------------------


def child_main(kind: str, impl: str, point: int, ops: int) -> int:
    aio, run = runner_for(impl)
    try:
        if kind == "idle":
            result = run(point_idle(aio, point, ops))
        elif kind == "timers":
            result = run(point_timers(aio, point, ops))
        else:
            result = run(point_memory(aio, MEM_CONNS if point <= 0 else point, MEM_TASKS))
    except BaseException as exc:
        print(json.dumps({"kind": kind, "impl": impl, "point": point, "error": repr(exc)[:300]}))
        raise
    result.update(kind=kind, impl=impl, point=point)
    print(json.dumps(result))
    return 0


# -- runner -------------------------------------------------------------------


def _run(cmd: list[str], env: dict[str, str], cpu: int | None, timeout: float) -> dict[str, Any]:
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    lines = proc.stdout.strip().splitlines()
    if lines and lines[-1].startswith("{"):
        return json.loads(lines[-1])  # type: ignore[no-any-return]
    tail = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return {"error": tail[-1] if tail else f"exit status {proc.returncode}"}


def _ratio_text(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def summarise(records: list[dict[str, Any]], impls: list[str]) -> list[dict[str, Any]]:
    """Per (kind, point, impl): medians and per-round CPU ratios to asyncio."""
    rows = []
    keys = sorted({(r["kind"], r["point"]) for r in records}, key=lambda k: (k[0], k[1]))
    for kind, point in keys:
        mine = [r for r in records if r["kind"] == kind and r["point"] == point]
        for impl in impls:
            ok = [r for r in mine if r["impl"] == impl and "error" not in r]
            row: dict[str, Any] = {"kind": kind, "point": point, "impl": impl, "runs": len(ok)}
            row["errors"] = [r["error"] for r in mine if r["impl"] == impl and "error" in r]
            if kind == "memory":
                for key in ("bytes_per_conn", "bytes_per_task"):
                    row[key] = statistics.median(r[key] for r in ok) if ok else None
            else:
                row["cpu_us_per_op"] = (
                    statistics.median(1e6 * r["cpu"] / r["ops"] for r in ok) if ok else None
                )
                row["ops_per_s"] = (
                    statistics.median(r["ops"] / r["wall"] for r in ok) if ok else None
                )
                ratios = []
                for rnd in {r["round"] for r in mine}:
                    base = [r for r in mine if r["round"] == rnd and r["impl"] == "asyncio"]
                    me = [r for r in ok if r["round"] == rnd]
                    if base and me and "error" not in base[0]:
                        b, m = base[0], me[0]
                        ratios.append((b["cpu"] / b["ops"]) / (m["cpu"] / m["ops"]))
                row["ratio_cpu"] = ratios
            rows.append(row)
    return rows


def format_tables(rows: list[dict[str, Any]]) -> str:
    out = []
    if any(r["kind"] == "idle" for r in rows):
        out.append(f"Echo, {ACTIVE} active connections among N idle (1 KiB round trips):\n")
        out.append(
            "| idle N | implementation | round trips/s (median) | server CPU µs/op "
            "| vs asyncio, CPU | vs own N=10 (CPU µs/op) |"
        )
        out.append("|---:|---|---:|---:|---:|---:|")
        out.extend(_curve_lines(rows, "idle"))
        out.append("")
    if any(r["kind"] == "timers" for r in rows):
        out.append("Timers: one timer armed and fired while N far-off timers are pending:\n")
        out.append(
            "| pending N | implementation | timers/s (median) | CPU µs/op "
            "| vs asyncio, CPU | vs own N=1e3 (CPU µs/op) |"
        )
        out.append("|---:|---|---:|---:|---:|---:|")
        out.extend(_curve_lines(rows, "timers"))
        out.append("")
    mem = [r for r in rows if r["kind"] == "memory"]
    if mem:
        out.append(
            f"Memory: resident bytes added per idle server-side connection ({mem[0]['point']:,}) "
            f"and per pending task ({MEM_TASKS:,}):\n"
        )
        out.append("| implementation | bytes / idle connection | bytes / pending task |")
        out.append("|---|---:|---:|")
        for r in mem:
            if r["bytes_per_conn"] is None:
                out.append(f"| {r['impl']} | failed: {(r['errors'] or ['?'])[0][:100]} | |")
            else:
                out.append(
                    f"| {r['impl']} | {r['bytes_per_conn']:,.0f} | {r['bytes_per_task']:,.0f} |"
                )
    return "\n".join(out)


def _curve_lines(rows: list[dict[str, Any]], kind: str) -> list[str]:
    mine = [r for r in rows if r["kind"] == kind]
    first = {}
    for r in mine:
        if r["impl"] not in first and r["cpu_us_per_op"] is not None:
            first[r["impl"]] = r["cpu_us_per_op"]
    lines = []
    for r in mine:
        if r["cpu_us_per_op"] is None:
            why = (r["errors"] or ["not run"])[0][:100]
            lines.append(f"| {r['point']:,} | {r['impl']} | failed: {why} | | | |")
            continue
        growth = r["cpu_us_per_op"] / first[r["impl"]]
        lines.append(
            f"| {r['point']:,} | {r['impl']} | {r['ops_per_s']:,.0f} | {r['cpu_us_per_op']:.2f} "
            f"| {_ratio_text(r['ratio_cpu'])} | {growth:.2f}x |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scaling curves (see the module docstring).")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "IMPL", "POINT", "OPS"))
    parser.add_argument("--rounds", type=int, default=None, help="default 3; 1 with --quick")
    parser.add_argument("--quick", action="store_true", help="small points, one round")
    parser.add_argument("--only", default="idle,timers,memory", help="kinds, comma-separated")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--cpu", type=int, default=None, help="pin children to this CPU")
    parser.add_argument("--extra-path", action="append", default=[], metavar="DIR")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        kind, impl, point, ops = args.child
        return child_main(kind, impl, int(point), int(ops))

    sys.path.insert(0, HERE)
    from run import child_env, importable, rotations

    env = child_env(args.extra_path)
    impls = [i for i in args.impls.split(",") if i]
    if "asyncio" not in impls:
        print("--impls must include asyncio", file=sys.stderr)
        return 2
    if "uvloop" in impls and not importable(sys.executable, "uvloop", env):
        impls.remove("uvloop")
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    kinds = [k for k in args.only.split(",") if k]
    plan: list[tuple[str, int, int]] = []
    for kind in kinds:
        if kind == "memory":
            plan.append(("memory", 1_000 if args.quick else MEM_CONNS, 0))
        elif kind in ("idle", "timers"):
            points, ops = (
                QUICK[kind]
                if args.quick
                else ((IDLE_POINTS, IDLE_TRIPS) if kind == "idle" else (TIMER_POINTS, TIMER_OPS))
            )
            plan.extend((kind, p, ops) for p in points)
        else:
            print(f"unknown kind {kind!r}", file=sys.stderr)
            return 2
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    for rnd in range(rounds):
        for index, (kind, point, ops) in enumerate(plan):
            for impl in rotations(impls, rnd + index):
                cmd = [sys.executable, __file__, "--child", kind, impl, str(point), str(ops)]
                rec = _run(cmd, env, args.cpu, 300.0)
                rec.update(kind=kind, impl=impl, point=point, round=rnd)
                records.append(rec)
                what = rec.get("error") or (
                    f"{1e6 * rec['cpu'] / rec['ops']:.2f} CPU µs/op" if "cpu" in rec else "ok"
                )
                print(
                    f"round {rnd + 1}/{rounds} {kind} {point:>9,} {impl:14} {what}", file=sys.stderr
                )
    rows = summarise(records, impls)
    elapsed = time.perf_counter() - started
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "rounds": rounds,
        "quick": args.quick,
        "cpu_pinned": args.cpu,
        "elapsed_s": round(elapsed, 1),
    }
    print(
        f"\n{rounds} round(s), a fresh process per point and implementation, rotated; "
        f"GC disabled in timed regions. Python {meta['python']}, {meta['date']}, {elapsed:.0f} s.\n"
    )
    print(format_tables(rows))
    if not args.no_save:
        os.makedirs(RESULTS_DIR, exist_ok=True)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = os.path.join(RESULTS_DIR, f"scaling-{stamp}{'-quick' if args.quick else ''}.json")
        with open(path, "w") as f:
            json.dump({"meta": meta, "records": records, "summary": rows}, f, indent=1)
        print(f"\nresults: {os.path.relpath(path)}")
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
