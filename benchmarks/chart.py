"""Draw the benchmark results as a PNG: CPU ratio to stdlib asyncio per benchmark.

Usage::

    python benchmarks/chart.py RESULTS.json [MORE.json ...] [--scaling SCALING.json] -o OUT.png

``RESULTS.json`` files are what ``run.py`` saves (several are merged: a later
file's rows replace an earlier file's for the same benchmark and implementation);
``SCALING.json`` is what ``scaling.py`` saves, drawn as two more panels (server CPU
per round trip against idle connections, CPU per timer against pending timers).
``run.py --chart OUT.png`` calls this on the run it just made.

The ratio bars are the median of the per-round CPU ratios, the whiskers their
min-max; the dashed line is parity with asyncio (> 1 is faster). matplotlib is a
benchmark-only extra (``pip install sansloop[bench]``), never a dependency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

COLOURS = {
    "sansloop-loop": "#1f77b4",
    "sansloop-full": "#9ecae1",
    "uvloop": "#ff7f0e",
    "asyncio": "#7f7f7f",
}


def _load_rows(paths: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    metas = []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        metas.append(data.get("meta", {}))
        for row in data["summary"]:
            rows[(row["bench"], row["impl"])] = row
    return list(rows.values()), metas


def draw(results: list[str], scaling: str | None, out: str) -> None:
    """Write the chart of *results* (and *scaling*, if given) to *out*."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, metas = _load_rows(results)
    benches = list(dict.fromkeys(r["bench"] for r in rows))
    impls = [
        i
        for i in ("sansloop-loop", "sansloop-full", "uvloop")
        if any(r["impl"] == i and r["ratio_cpu"] for r in rows)
    ]
    panels = 1 + (2 if scaling else 0)
    fig = plt.figure(
        figsize=(11, 0.42 * len(benches) * max(len(impls), 1) / 2 + 3 + 4 * (panels - 1))
    )
    grid = fig.add_gridspec(panels, 2 if scaling else 1, height_ratios=[3] + [1.3] * (panels - 1))
    ax = fig.add_subplot(grid[0, :])
    height = 0.8 / max(len(impls), 1)
    for k, impl in enumerate(impls):
        ys, meds, lo, hi = [], [], [], []
        for j, bench in enumerate(benches):
            row = next((r for r in rows if r["bench"] == bench and r["impl"] == impl), None)
            if row is None or not row["ratio_cpu"]:
                continue
            med = statistics.median(row["ratio_cpu"])
            ys.append(j + (k - (len(impls) - 1) / 2) * height)
            meds.append(med)
            lo.append(med - min(row["ratio_cpu"]))
            hi.append(max(row["ratio_cpu"]) - med)
        ax.barh(
            ys,
            meds,
            height=height,
            xerr=[lo, hi],
            color=COLOURS.get(impl),
            label=impl,
            error_kw={"elinewidth": 0.8, "capsize": 2},
        )
    ax.axvline(1.0, color="black", linestyle="--", linewidth=0.8)
    ax.set_yticks(range(len(benches)))
    ax.set_yticklabels(benches)
    ax.invert_yaxis()
    ax.set_xlabel(
        "CPU-time ratio to stdlib asyncio (median of rounds, whiskers min-max; > 1 is faster)"
    )
    meta = metas[-1] if metas else {}
    ax.set_title(
        f"sansloop vs stdlib asyncio, Python {meta.get('python', '?')}, "
        f"commit {meta.get('commit', '?')}, {meta.get('rounds', '?')} round(s)"
    )
    ax.legend(loc="lower right")
    if scaling:
        _draw_scaling(fig, grid, scaling)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _draw_scaling(fig: Any, grid: Any, path: str) -> None:
    with open(path) as f:
        rows = json.load(f)["summary"]
    for col, (kind, xlabel, ylabel) in enumerate(
        (
            ("idle", "idle connections (10 active)", "server CPU µs per round trip"),
            ("timers", "pending timers", "CPU µs per timer (armed + fired)"),
        )
    ):
        ax = fig.add_subplot(grid[1, col])
        for impl in ("asyncio", "sansloop-loop", "sansloop-full", "uvloop"):
            pts = [
                (r["point"], r["cpu_us_per_op"])
                for r in rows
                if r["kind"] == kind and r["impl"] == impl and r.get("cpu_us_per_op")
            ]
            if pts:
                xs = [p[0] for p in sorted(pts)]
                ys = [p[1] for p in sorted(pts)]
                ax.plot(xs, ys, marker="o", label=impl, color=COLOURS.get(impl))
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    mem = [r for r in rows if r["kind"] == "memory" and r.get("bytes_per_conn")]
    if mem:
        ax = fig.add_subplot(grid[2, :])
        names = [r["impl"] for r in mem]
        xs = range(len(names))
        ax.bar(
            [x - 0.2 for x in xs],
            [r["bytes_per_conn"] for r in mem],
            0.4,
            label="per idle connection",
        )
        ax.bar(
            [x + 0.2 for x in xs], [r["bytes_per_task"] for r in mem], 0.4, label="per pending task"
        )
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names)
        ax.set_ylabel("resident bytes")
        ax.legend(fontsize="small")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Chart run.py (and scaling.py) results.")
    parser.add_argument("results", nargs="+", help="run.py JSON files (later ones win)")
    parser.add_argument("--scaling", default=None, help="a scaling.py JSON file")
    parser.add_argument("-o", "--out", required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    try:
        draw(args.results, args.scaling, args.out)
    except ImportError:
        print("matplotlib is needed: pip install 'sansloop[bench]'", file=sys.stderr)
        return 2
    print(f"chart: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
