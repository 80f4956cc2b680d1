"""Write a subscriber list for ``briefbot subscribers import`` (benchmark input).

Usage: ``python -m bench.gen_subscribers big.csv --rows 100000``: a header, then ~80%
private chats, the rest groups, supergroups and channels, with a mix of own times,
``now`` and languages, in shuffled order (as an export of another system would be).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from pathlib import Path


def rows(count: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for n in range(1, count + 1):
        kind = rnd.choices(("private", "group", "supergroup", "channel"), (80, 5, 10, 5))[0]
        if kind == "private":
            cid = 100_000_000 + n
        elif kind == "group":
            cid = -(200_000_000 + n)
        else:
            cid = -(1_000_000_000_000 + n)
        time = rnd.choice(("", "", "now", f"{rnd.randrange(24):02d}:{rnd.randrange(60):02d}"))
        lang = rnd.choice(("", "zh", "en"))
        out.append(f"{cid},{'' if kind == 'private' else kind},{time},{lang}\n")
    rnd.shuffle(out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gen_subscribers")
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    args.out.write_text("chat_id,type,time,lang\n" + "".join(rows(args.rows)), encoding="utf-8")
    print(f"{args.out}: {args.rows} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
