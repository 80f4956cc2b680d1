"""Full index build, before and after, in the same minutes.

    python -m bench.bench_index --years 20 [--base REF] [--runs 3] [--content DIR]

Each build is a fresh process (as ``briefbot index`` on a new database) that opens an empty
database and syncs the archive; the variants run in turn, ``--runs`` rounds:

- ``base``: the tree of git ``REF`` (default ``HEAD~1``), extracted with ``git archive``;
- ``thread``: this tree, files read in a thread of the sync's process (no worker process);
- ``head``: this tree as it runs (a worker process when the build reads many files).

Wall time, CPU (user + sys of the build and every process it started) and the peak RSS of
the build's process and of its workers (added up) are printed as a table. The machine is
shared: read the CPU column first, and compare variants of the same round.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs in the build's process, with the tree to test first on sys.path.
_PROBE = r"""
import asyncio, json, os, sys, time
from pathlib import Path
tree, db, content, thread = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "1"
sys.path.insert(0, tree)
from bot.db.archive import Archive

worker_kb = [0]
worker_cpu = [0.0]
try:
    from bot.db import prepare
except ImportError:
    prepare = None
if prepare is not None:
    if thread:
        prepare.PROCESS_FILES = 10**9
    close = prepare.Reader.close

    async def measured_close(self):
        procs = getattr(self, "_procs", None) or [p for p in [getattr(self, "_proc", None)] if p]
        for proc in procs:  # every worker's peak RSS and CPU, added up
            worker_kb[0] += vm_hwm(proc.pid)
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            worker_cpu[0] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        await close(self)

    prepare.Reader.close = measured_close


def vm_hwm(pid="self"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def main():
    started = time.perf_counter()
    async with await Archive.open(db) as store:
        report = await store.sync(content)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "items": report.items, "rss_kb": vm_hwm(),
                      "worker_kb": worker_kb[0], "worker_cpu": worker_cpu[0]}))

asyncio.run(main())
"""


def build(tree: Path, content: Path, work: Path, thread: bool) -> dict[str, float]:
    db = work / "build.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tree), str(db), str(content), "1" if thread else "0"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    result["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def extract(ref: str, into: Path) -> None:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--start-year", type=int, default=2000)
    parser.add_argument("--content", type=Path, help="an archive to build (default: generate)")
    parser.add_argument("--base", default="HEAD~1", help="git ref of the 'before' tree")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variants", default="base,thread,head")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        work = Path(tmp)
        content = args.content
        if content is None:
            content = work / "content"
            subprocess.run(
                [sys.executable, "-m", "bench.gen_archive", str(content), "--years",
                 str(args.years), "--start-year", str(args.start_year)],
                cwd=REPO, check=True, capture_output=True,
            )  # fmt: skip
        trees = {"thread": (REPO, True), "head": (REPO, False)}
        if "base" in args.variants:
            extract(args.base, work / "base")
            trees["base"] = (work / "base", False)
        names = [v for v in args.variants.split(",") if v in trees]
        results: dict[str, list[dict[str, float]]] = {v: [] for v in names}
        for run in range(args.runs):
            for name in names:
                tree, thread = trees[name]
                r = build(tree, content, work, thread)
                results[name].append(r)
                print(
                    f"run {run + 1} {name}: wall {r['wall']:.2f} s, cpu {r['cpu']:.2f} s "
                    f"(worker {r['worker_cpu']:.2f} s), "
                    f"rss {r['rss_kb'] / 1024:.0f} MB, worker {r['worker_kb'] / 1024:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
        items = int(next(iter(results.values()))[0]["items"])
        print(f"\nFull index build, {items:,} items, {args.runs} runs per variant")
        print(f"(base = {args.base})\n")
        print(
            "| variant | wall (s) | CPU user+sys (s) | of it, worker (s) | peak RSS (MB) | worker |"
        )
        print("|---|---|---|---|---|---|")
        for name in names:
            rs = results[name]

            def span(key: str, scale: float = 1.0, rs: list[dict[str, float]] = rs) -> str:
                values = sorted(r[key] / scale for r in rs)
                return " / ".join(f"{v:.2f}" if scale == 1.0 else f"{v:.0f}" for v in values)

            print(
                f"| {name} | {span('wall')} | {span('cpu')} | {span('worker_cpu')} "
                f"| {span('rss_kb', 1024)} | {span('worker_kb', 1024)} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
