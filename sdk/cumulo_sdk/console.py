"""What the `cumulo` commands share on the terminal: where a device keeps its state,
sizes for people, and a progress bar."""

from __future__ import annotations

import getpass
import pathlib
import sys
import time
from collections.abc import Mapping


def home(environ: Mapping[str, str]) -> pathlib.Path:
    configured = environ.get("CUMULO_HOME")
    return pathlib.Path(configured) if configured else pathlib.Path.home() / ".config" / "cumulo"


def parse_span(text: str, flag: str) -> int:
    """Seconds from "90s", "30m", "12h" or "7d"; a bad value ends the command naming the flag."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise SystemExit(f"{flag} takes a number and s, m, h or d, e.g. 7d")
    return int(text[:-1]) * units[text[-1]]


class ProgressBar:
    """bytes done / all, rate and time left, on one line of standard error."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.shown < 0.2 and done < total:
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        left = (total - done) / rate if rate > 0 else 0
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        print(
            f"\r{self.label[:30]:<30} [{bar:<30}] {share:6.1%} {human_size(done)}/{human_size(total)} {human_size(rate)}/s ETA {left:4.0f}s",
            end="" if done < total else "\n",
            file=sys.stderr,
            flush=True,
        )


def human_size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} TiB"


def read_password(prompt: str, *, confirm: bool = False) -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    password = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat the password: ") != password:
        raise SystemExit("the passwords differ")
    return password
