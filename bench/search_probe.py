"""Search timing of one tree on one index, for comparing two commits in alternating
processes, each tree on an index it built itself from the same files. Run this file by
path with the tree to time first on PYTHONPATH (the old tree need not have this file):

    git worktree add /tmp/old REF
    PYTHONPATH=/tmp/old python bench/search_probe.py /tmp/old.sqlite3 --build CONTENT
    PYTHONPATH=. python bench/search_probe.py new.sqlite3 --build CONTENT
    for r in 1 2 3 4 5 6; do
        PYTHONPATH=/tmp/old python bench/search_probe.py /tmp/old.sqlite3
        PYTHONPATH=. python bench/search_probe.py new.sqlite3 [--collapse]
    done

Without PYTHONPATH, the installed (editable) tree is imported whatever the directory.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import time
from pathlib import Path

from bot.db.archive import Archive

QUERIES = ["芯", "小米", "英伟达", "deepseek", "AI 芯片", "小米 2015"]


async def probe(db: Path, collapse: bool, runs: int, build: Path | None) -> str:
    store = await Archive.open(db)
    try:
        if build is not None:
            await store.sync(build)
        # An older tree's search has no collapse parameter: time it as it is.
        kw = {"collapse": True} if collapse else {}
        if "collapse" not in inspect.signature(store.search).parameters:
            kw = {}
        for q in QUERIES:  # warm: the first search of each query pays its exact count
            await store.search(q, limit=10, **kw)  # type: ignore[arg-type]
        times: list[float] = []
        cpu = time.process_time()
        for _ in range(runs):
            for q in QUERIES:
                t = time.perf_counter()
                await store.search(q, limit=10, **kw)  # type: ignore[arg-type]
                times.append((time.perf_counter() - t) * 1000)
        per = (time.process_time() - cpu) / len(times) * 1000
    finally:
        await store.close()
    times.sort()
    p50, p95 = times[len(times) // 2], times[int(len(times) * 0.95)]
    return f"p50 {p50:.2f} ms  p95 {p95:.2f} ms  CPU {per:.2f} ms a search"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", type=Path)
    ap.add_argument("--collapse", action="store_true", help="one hit per text, as /find")
    ap.add_argument("--runs", type=int, default=100, help="rounds over the 6 queries")
    ap.add_argument("--build", type=Path, help="sync this content directory first")
    args = ap.parse_args()
    print(asyncio.run(probe(args.db, args.collapse, args.runs, args.build)))


if __name__ == "__main__":
    main()
