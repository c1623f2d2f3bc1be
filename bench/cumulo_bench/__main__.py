"""`python -m cumulo_bench [--only GROUP]`: run the benchmark groups, print a table, and write
var/bench/latest.json (one entry per figure: value, unit, baseline, ratio, target)."""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Awaitable, Callable

import uvloop

from cumulo_bench import blob_group, console_group, gateway_group, lifecycle_group, locator_group, sync_group, takeout_group
from cumulo_bench.report import Figure, print_table, write_json
from cumulo_bench.stack import BenchStack
from cumulo_platform.logging import configure_logging

GROUPS: dict[str, Callable[[BenchStack], Awaitable[list[Figure]]]] = {
    "gateway": gateway_group.run,
    "blob": blob_group.run,
    "lifecycle": lifecycle_group.run,
    "sync": sync_group.run,
    "locator": locator_group.run,
    "console": console_group.run,
    "takeout": takeout_group.run,
}


async def _run(groups: list[str]) -> list[Figure]:
    figures: list[Figure] = []
    for name in groups:
        print(f"group {name}", file=sys.stderr, flush=True)
        stack = BenchStack()
        try:
            figures += await GROUPS[name](stack)
        finally:
            stack.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cumulo_bench")
    parser.add_argument("--only", choices=sorted(GROUPS), help="run one group")
    parser.add_argument("--out", default="var/bench/latest.json")
    args = parser.parse_args(argv)
    configure_logging("bench", "warning", "console")
    groups = [args.only] if args.only else list(GROUPS)
    figures = uvloop.run(_run(groups))
    print_table(figures)
    write_json(figures, pathlib.Path(args.out))
    print(f"\nwritten to {args.out}")
    missed = [f.name for f in figures if f.meets_target is False]
    if missed:
        print(f"below target: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
