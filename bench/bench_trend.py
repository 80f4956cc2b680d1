"""Benchmark /trend on a synthetic archive: the SQL counts and the whole chart (counts +
matplotlib PNG), p50/p95 per query.

Usage: ``python -m bench.bench_trend [--years 20] [--runs 30]``

20 years is ~73k items. The first chart of a process also pays matplotlib's import; that
cold time is printed on its own, the percentiles are of warm runs. Target: p95 ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import peak_rss_kb, percentile
from bench.gen_archive import generate
from bot.core.search import parse_query
from bot.db.archive import Archive
from bot.replies import Ctx, load_trend, trend

TARGET_P95_MS = 300.0
QUERIES = (
    "小米",  # a common company: many hits, every month
    "芯片 英伟达",
    "小米 华为 苹果 特斯拉",  # the most lines a chart takes
    "deepseek",
    "小米 2015-02",  # a short range: weekly buckets, day counts
    "AI 2005-01..2006-12",
)


async def run(years: int, runs: int) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        content = Path(tmp) / "content"
        items = generate(content, years)
        archive = await Archive.open(Path(tmp) / "bench.sqlite3")
        try:
            t0 = time.perf_counter()
            await archive.sync(content)
            print(
                f"archive: {items} items, {years} years, indexed in {time.perf_counter() - t0:.1f} s"
            )
            ctx = Ctx(archive, "zh")
            t0 = time.perf_counter()
            await trend(ctx, QUERIES[0])
            print(
                f"first chart of the process (imports matplotlib): {1000 * (time.perf_counter() - t0):.0f} ms"
            )
            print()
            print(
                "| query | hits | SQL p50 / p95 ms | chart p50 / p95 ms | chart CPU p50 / p95 ms | PNG KiB |"
            )
            print("|---|---:|---:|---:|---:|---:|")
            worst = 0.0
            for q in QUERIES:
                parsed = parse_query(q)
                sql: list[float] = []
                whole: list[float] = []
                cpu: list[float] = []  # process CPU (all threads): what contention cannot inflate
                size = hits = 0
                for _ in range(runs):
                    t0 = time.perf_counter()
                    found = await load_trend(archive, parsed)
                    sql.append(1000 * (time.perf_counter() - t0))
                    hits = found.total if found else 0
                    t0, c0 = time.perf_counter(), time.process_time()
                    reply = await trend(ctx, q)
                    whole.append(1000 * (time.perf_counter() - t0))
                    cpu.append(1000 * (time.process_time() - c0))
                    size = len(reply.photo or b"")
                p95 = percentile(whole, 95)
                worst = max(worst, p95)
                print(
                    f"| `{q}` | {hits} | {percentile(sql, 50):.1f} / {percentile(sql, 95):.1f}"
                    f" | {percentile(whole, 50):.0f} / {p95:.0f}"
                    f" | {percentile(cpu, 50):.0f} / {percentile(cpu, 95):.0f} | {size / 1024:.0f} |"
                )
        finally:
            await archive.close()
    ok = worst <= TARGET_P95_MS
    print()
    print(
        f"worst chart p95 {worst:.0f} ms (target ≤ {TARGET_P95_MS:.0f} ms): {'PASS' if ok else 'FAIL'}"
    )
    print(
        f"peak RSS {peak_rss_kb() / 1024:.0f} MiB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--years", type=int, default=20, help="archive size (20 ≈ 73k items)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per query")
    args = parser.parse_args(argv)
    return 0 if asyncio.run(run(args.years, args.runs)) else 1


if __name__ == "__main__":
    sys.exit(main())
