"""The interleaved ratio runner: sansloop against stdlib asyncio (and uvloop).

Usage::

    python benchmarks/run.py [--rounds N] [--quick] [--only NAME[,NAME]] [--impls A,B]

Method (see docs/performance.md and the notes on these noisy machines): every
round runs every implementation once per benchmark, each in a fresh process
(``child.py``), and rotates the order of implementations each round (A B C,
B C A, C A B, ...). Absolute figures drift between runs on shared VMs; a ratio
taken between runs of the same round holds much better. So the table gives, per
implementation:

- the median ops/s over rounds (wall time of the timed region);
- the ratio to stdlib asyncio: the median of the per-round ratios, with their
  min-max (> 1 means faster than asyncio);
- the same ratio by CPU time of the measured process (``time.process_time``),
  which repeats better than wall time;
- the median CPU microseconds per op.

Each child warms up with one full-size run and times the next one with GC
disabled. ``--quick`` uses tiny sizes and one round (a smoke run, under 60 s); its
figures mean nothing. ``--chart OUT.png`` draws the run (``chart.py``). Results go to ``benchmarks/results/`` as JSON
unless ``--no-save``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from child import BENCHMARKS, IMPLS  # noqa: E402  (micro + udp_echo + tcp_echo)

BASELINE = "asyncio"
CHILD = os.path.join(HERE, "child.py")
RESULTS_DIR = os.path.join(HERE, "results")


def rotations(impls: list[str], round_index: int) -> list[str]:
    """The order of *impls* in round *round_index*: A B C, B C A, C A B, ..."""
    k = round_index % len(impls)
    return impls[k:] + impls[:k]


def child_env(extra_path: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    if extra_path:
        paths = extra_path + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def importable(python: str, module: str, env: dict[str, str]) -> bool:
    proc = subprocess.run(
        [python, "-c", f"import {module}"], env=env, capture_output=True, timeout=60
    )
    return proc.returncode == 0


def run_child(
    python: str,
    bench: str,
    impl: str,
    size: int,
    env: dict[str, str],
    timeout: float,
    cpu: int | None,
) -> dict[str, Any]:
    """One fresh process, one timed run; a dict with the figures or an ``error``."""
    cmd = [python, CHILD, bench, impl, "--size", str(size)]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"bench": bench, "impl": impl, "error": f"timed out after {timeout:g} s"}
    out = proc.stdout.strip().splitlines()
    if out and out[-1].startswith("{"):
        rec = json.loads(out[-1])
        if proc.returncode == 0 or "error" in rec:
            return rec
    if proc.returncode != 0 or not out:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        return {"bench": bench, "impl": impl, "error": lines[-1] if lines else "failed"}
    return {
        "bench": bench,
        "impl": impl,
        "error": f"no result line (exit status {proc.returncode})",
    }


def _range(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def summarise(
    records: list[dict[str, Any]], impls: list[str], benches: list[str]
) -> list[dict[str, Any]]:
    """Per (bench, impl): medians over rounds and per-round ratios to asyncio."""
    rows = []
    for bench in benches:
        by_round: dict[int, dict[str, dict[str, Any]]] = {}
        for rec in records:
            if rec["bench"] == bench:
                by_round.setdefault(rec["round"], {})[rec["impl"]] = rec
        for impl in impls:
            ok = [r[impl] for r in by_round.values() if impl in r and "error" not in r[impl]]
            errors = [r[impl]["error"] for r in by_round.values() if "error" in r.get(impl, {})]
            wall_ratios, cpu_ratios = [], []
            for r in by_round.values():
                base, mine = r.get(BASELINE), r.get(impl)
                if base and mine and "error" not in base and "error" not in mine:
                    wall_ratios.append((mine["ops"] / mine["wall"]) / (base["ops"] / base["wall"]))
                    cpu_ratios.append((base["cpu"] / base["ops"]) / (mine["cpu"] / mine["ops"]))
            rows.append(
                {
                    "bench": bench,
                    "impl": impl,
                    "runs": len(ok),
                    "errors": errors,
                    "ops_per_s": statistics.median(r["ops"] / r["wall"] for r in ok)
                    if ok
                    else None,
                    "cpu_us_per_op": (
                        statistics.median(1e6 * r["cpu"] / r["ops"] for r in ok) if ok else None
                    ),
                    "client_cpu_us_per_op": (
                        statistics.median(1e6 * r["client"]["cpu_measured"] / r["ops"] for r in ok)
                        if ok and all("client" in r for r in ok)
                        else None
                    ),
                    "ratio_wall": wall_ratios,
                    "ratio_cpu": cpu_ratios,
                }
            )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: readable in a terminal, pasteable into docs.

    When some benchmark has a load client in another process, a last column
    gives that client's CPU µs per op (its own measure of its timed part).
    """
    with_client = any(row.get("client_cpu_us_per_op") is not None for row in rows)
    head = (
        "| benchmark | implementation | ops/s (median) | vs asyncio, wall: median (min-max) "
        "| vs asyncio, CPU: median (min-max) | CPU µs/op |"
    )
    rule = "|---|---|---:|---:|---:|---:|"
    if with_client:
        head += " load client CPU µs/op |"
        rule += "---:|"
    lines = [head, rule]
    for row in rows:
        if row["ops_per_s"] is None:
            why = row["errors"][0] if row["errors"] else "not run"
            gap = " |" if with_client else ""
            lines.append(f"| {row['bench']} | {row['impl']} | failed: {why[:120]} | | | |{gap}")
            continue
        line = (
            f"| {row['bench']} | {row['impl']} | {row['ops_per_s']:,.0f} "
            f"| {_range(row['ratio_wall'])} | {_range(row['ratio_cpu'])} "
            f"| {row['cpu_us_per_op']:.2f} |"
        )
        if with_client:
            client = row.get("client_cpu_us_per_op")
            line += f" {client:.2f} |" if client is not None else " |"
        lines.append(line)
    return "\n".join(lines)


def git_commit() -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = proc.stdout.strip()
    if not commit:
        return None
    dirty = subprocess.run(
        ["git", "-C", HERE, "status", "--porcelain", "--", "../src"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    return f"{commit}+uncommitted src changes" if dirty else commit


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Interleaved sansloop/asyncio ratio benchmarks.")
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds (default 5; 1 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only these benchmarks (repeat or comma-separate): " + ", ".join(BENCHMARKS),
    )
    parser.add_argument(
        "--impls",
        default=",".join(IMPLS),
        help="comma-separated implementations (default: all; uvloop if importable)",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter for the children")
    parser.add_argument(
        "--extra-path",
        action="append",
        default=[],
        metavar="DIR",
        help="prepend DIR to the children's PYTHONPATH (e.g. where uvloop lives)",
    )
    parser.add_argument("--cpu", type=int, default=None, help="pin children to this CPU (taskset)")
    parser.add_argument("--size-scale", type=float, default=1.0, help="multiply every size")
    parser.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/")
    parser.add_argument(
        "--chart",
        default=None,
        metavar="PNG",
        help="also draw this run's CPU ratios to PNG (needs matplotlib: the bench extra)",
    )
    parser.add_argument(
        "--scaling",
        default=None,
        metavar="JSON",
        help="with --chart: add the curves of this scaling.py result file",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    benches = [n for spec in args.only for n in spec.split(",") if n] or list(BENCHMARKS)
    unknown = [b for b in benches if b not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    env = child_env(args.extra_path)
    impls = [i for i in args.impls.split(",") if i]
    bad = [i for i in impls if i not in IMPLS]
    if bad or BASELINE not in impls:
        print(f"--impls must include {BASELINE} and only: {', '.join(IMPLS)}", file=sys.stderr)
        return 2
    notes = []
    if "uvloop" in impls and not importable(args.python, "uvloop", env):
        impls.remove("uvloop")
        notes.append("uvloop: not importable, skipped")
    timeout = 30.0 if args.quick else 300.0

    records: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    for rnd in range(rounds):
        for bench in benches:
            b = BENCHMARKS[bench]
            size = b.quick if args.quick else max(int(b.size * args.size_scale), 1)
            order = rotations(impls, rnd + benches.index(bench))
            for impl in order:
                rec = run_child(args.python, bench, impl, size, env, timeout, args.cpu)
                rec["round"] = rnd
                records.append(rec)
                status = rec.get("error") or f"{rec['ops'] / rec['wall']:,.0f} ops/s"
                print(f"round {rnd + 1}/{rounds} {bench:16} {impl:14} {status}", file=sys.stderr)

    rows = summarise(records, impls, benches)
    elapsed = time.perf_counter() - started
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "python": subprocess.run(
            [args.python, "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
            env=env,
        ).stdout.strip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "rounds": rounds,
        "quick": args.quick,
        "cpu_pinned": args.cpu,
        "size_scale": args.size_scale,
        "elapsed_s": round(elapsed, 1),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "notes": notes,
    }
    print()
    print(
        f"{rounds} round(s), implementations rotated each round, a fresh process per run; "
        f"GC disabled in the timed region; a full-size warm-up run first. Python {meta['python']}, "
        f"commit {meta['commit']}, {meta['date']}, {elapsed:.0f} s, "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
        f"({os.cpu_count()} CPUs)."
    )
    for note in notes:
        print(f"note: {note}")
    print()
    print(format_table(rows))
    if not args.no_save:
        os.makedirs(RESULTS_DIR, exist_ok=True)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = os.path.join(RESULTS_DIR, f"{stamp}{'-quick' if args.quick else ''}.json")
        with open(path, "w") as f:
            json.dump({"meta": meta, "records": records, "summary": rows}, f, indent=1)
        print(f"\nresults: {os.path.relpath(path)}")
        if args.chart:
            from chart import draw

            draw([path], args.scaling, args.chart)
            print(f"chart: {args.chart}")
    failed = any(rec.get("error") for rec in records)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
