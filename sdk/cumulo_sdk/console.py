"""What the `cumulo` commands share on the terminal: where a device keeps its state, times
and sizes for people, how a command ends (an error, Ctrl-C) and a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import dataclasses
import datetime as dt
import getpass
import math
import pathlib
import shutil
import signal
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any

from cumulo_sdk.client import DEFAULT_CONNECT_TIMEOUT
from cumulo_sdk.errors import CumuloRpcError
from cumulo_sdk.transfer import TransferProgress
from cumulo_sdk.transport import Transport

INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
GATEWAY_HINT = "Is `make run` going? Set CUMULO_GATEWAY or --gateway to its address."


def home(environ: Mapping[str, str]) -> pathlib.Path:
    configured = environ.get("CUMULO_HOME")
    return pathlib.Path(configured) if configured else pathlib.Path.home() / ".config" / "cumulo"


def add_transport_flags(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """--ca and --plaintext: how the gateway is reached (TLS unless asked otherwise)."""
    parser.add_argument(
        "--ca", default=environ.get("CUMULO_CA", ""),
        help="a PEM file of CAs to trust besides the system's, e.g. make run's var/tls/ca.pem (default: CUMULO_CA)",
    )
    parser.add_argument(
        "--plaintext", action="store_true", default=environ.get("CUMULO_PLAINTEXT", "") == "1",
        help="no TLS, to a gateway on this machine only (default: CUMULO_PLAINTEXT=1)",
    )


def transport(args: argparse.Namespace) -> Transport:
    return Transport(ca=args.ca, plaintext=args.plaintext)


def connect_timeout(environ: Mapping[str, str]) -> float:
    """Seconds the first call waits for the gateway (CUMULO_CONNECT_TIMEOUT, default 5)."""
    text = environ.get("CUMULO_CONNECT_TIMEOUT", "")
    try:
        seconds = float(text) if text else DEFAULT_CONNECT_TIMEOUT
    except ValueError:
        raise SystemExit(f"CUMULO_CONNECT_TIMEOUT takes seconds, e.g. 5; not {text!r}") from None
    if not 0 < seconds < math.inf:
        raise SystemExit(f"CUMULO_CONNECT_TIMEOUT takes seconds, e.g. 5; not {text!r}")
    return seconds


def parse_span(text: str, flag: str) -> int:
    """Seconds from "90s", "30m", "12h" or "7d"; a bad value ends the command naming the flag."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise SystemExit(f"{flag} takes a number and s, m, h or d, e.g. 7d")
    return int(text[:-1]) * units[text[-1]]


def when(stamp: Any) -> str:
    """A protobuf Timestamp for a person: this machine's local time with its zone ("-" when unset)."""
    if not (stamp.seconds or stamp.nanos):
        return "-"
    return stamp.ToDatetime(tzinfo=dt.UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def when_iso(stamp: Any) -> str | None:
    """A protobuf Timestamp for a program (`--json`): ISO-8601 in UTC, None when unset."""
    if not (stamp.seconds or stamp.nanos):
        return None
    return stamp.ToDatetime(tzinfo=dt.UTC).isoformat(timespec="seconds")


def plural(count: int, one: str, many: str | None = None) -> str:
    """ "1 item", "2 items" ("0 items")."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


def human_size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} TiB"


@contextlib.contextmanager
def ctrl_c_raises() -> Iterator[None]:
    """asyncio.run's own Ctrl-C handler cancels the command's task, which a blocking read (a
    password prompt, a question) never notices until Enter; during one, Ctrl-C raises at once
    instead."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def read_password(prompt: str, *, confirm: bool = False) -> str:
    with ctrl_c_raises():
        return _read_password(prompt, confirm=confirm)


def _read_password(prompt: str, *, confirm: bool) -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    password = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat the password: ") != password:
        raise SystemExit("the passwords differ")
    return password


# --- how a command ends ------------------------------------------------------------------------


@dataclasses.dataclass
class Screen:
    """What the running command has left on its terminal, for the line that ends it."""

    open_line: int = 0  # the width of a progress line not ended yet (0: none)
    resume_from: float | None = None  # the share a new run of the interrupted transfer goes on from
    unfinished: str = ""  # what a new run of the command finishes ("finish replacing notes.txt")


_screen: contextvars.ContextVar[Screen] = contextvars.ContextVar("cumulo_screen")


def screen() -> Screen:
    """The running command's (each command of the tests' in-process runner has its own)."""
    try:
        return _screen.get()
    except LookupError:
        current = Screen()
        _screen.set(current)
        return current


def end_line() -> None:
    """Ends a progress line left open, so that what follows starts on a line of its own."""
    current = screen()
    if current.open_line:
        print(file=sys.stderr, flush=True)
        current.open_line = 0


def debugging(environ: Mapping[str, str]) -> bool:
    """CUMULO_DEBUG=1: an unexpected error shows its traceback, for a bug report."""
    return environ.get("CUMULO_DEBUG", "") == "1"


def run(program: str, main: Callable[[], Coroutine[Any, Any, int]], *, debug: bool = False) -> int:
    """Runs a command's coroutine to its exit code. Ctrl-C cancels what is in flight (an upload
    keeps its place for the next run) and ends the command with one line and exit code 130.
    An error the command did not expect is one line too (exit code 1); `debug` lets its
    traceback through instead."""
    token = _screen.set(current := Screen())
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        end_line()
        resume = current.resume_from
        if resume is not None:
            hint = f"; run the same command again to resume from {math.floor(resume * 100)}%"
        else:
            hint = f"; run the same command again to {current.unfinished}" if current.unfinished else ""
        print(f"{program}: interrupted{hint}", file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT
    except OSError as err:  # this machine's: a full disk, a folder that may not be written
        if debug:
            raise
        end_line()
        where = f"{err.filename}: " if err.filename else ""
        print(f"{program}: {where}{err.strerror or err}", file=sys.stderr, flush=True)
        return 1
    except Exception as err:
        if debug:
            raise
        end_line()
        # The first line of the message only: what a person can quote in a report, without a
        # dump of what the error carried (which might hold what was being sent).
        said = (str(err).strip().splitlines() or [""])[0][:200]
        print(
            f"{program}: unexpected error: {type(err).__name__}{': ' + said if said else ''} "
            "(please report it; CUMULO_DEBUG=1 shows where it happened)",
            file=sys.stderr, flush=True,
        )
        return 1
    finally:
        _screen.reset(token)


def failed(program: str, error: Exception, hint: str = "") -> int:
    """Ends a command on an error with one line: what went wrong and what to do, then the
    reason in brackets (the one word a script matches); exit code 1."""
    end_line()
    if isinstance(error, CumuloRpcError):
        if error.reason == "GATEWAY_UNREACHABLE":
            hint = hint or GATEWAY_HINT
        sentences = [error.sentence, hint]
        if error.retry_after_seconds:
            sentences.append(f"Try again in {math.ceil(error.retry_after_seconds)} s")
        said = [s.rstrip(".") for s in sentences if s]
        text = ". ".join(said) + ("." if len(said) > 1 else "") + f" [{error.label}]"
    else:
        text = str(error)
    print(f"{program}: {text}", file=sys.stderr, flush=True)
    return 1


# --- the progress bar ----------------------------------------------------------------------------


def char_width(char: str) -> int:
    """Columns a character takes at a terminal: East-Asian wide and full-width ones two,
    combining marks and zero-width formatting none."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(char_width(c) for c in text)


def fit(text: str, width: int) -> str:
    """`text` in exactly `width` columns: cut (ending in "~") or padded with spaces."""
    if display_width(text) > width:
        kept, used = [], 0
        for char in text:
            if used + char_width(char) > width - 1:
                break
            kept.append(char)
            used += char_width(char)
        text = "".join(kept) + "~"
    return text + " " * (width - display_width(text))


def _clock(seconds: float) -> str:
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class _Rate:
    """Bytes a second, smoothed: an exponential average of half-second samples, none until the
    first sample is in (the first chunks fill buffers far faster than the network drains them,
    and the time spent hashing or connecting before is not the transfer's)."""

    SAMPLE_SECONDS = 0.5
    WEIGHT = 0.3  # of the newest sample

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None
        self.last: tuple[float, int] = (0.0, 0)
        self.per_second: float | None = None

    def add(self, now: float, done: int) -> None:
        if self.first is None:
            self.first = self.last = (now, done)
            return
        then, before = self.last
        if now - then < self.SAMPLE_SECONDS:
            return
        sample = max(done - before, 0) / (now - then)
        self.per_second = sample if self.per_second is None else self.WEIGHT * sample + (1 - self.WEIGHT) * self.per_second
        self.last = (now, done)

    def average(self, now: float, done: int) -> float | None:
        if self.first is None or now - self.first[0] < self.SAMPLE_SECONDS:
            return None
        return (done - self.first[1]) / (now - self.first[0])


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ProgressBar(TransferProgress):
    """A transfer's progress on one line of standard error, drawn over itself: hashing first
    (before an upload), then bytes, smoothed rate and time left. At a terminal only: in a log or
    a pipe the command's own closing line says what was done.

    An upload's bar shows two things, as the server stores what it receives some way behind
    what was sent: "#" for the bytes stored (where a new run would resume), "=" for those sent
    beyond them; it is done once the server has stored the last byte, not when it was sent."""

    REDRAW_SECONDS = 0.1
    LABEL_COLUMNS = 30

    def __init__(self, label: str, *, upload: bool = False) -> None:
        # A name may hold anything a file system allows: nothing of it may move the cursor.
        self.label = "".join("?" if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") else c for c in label)
        self.upload = upload
        self.sent = 0  # bytes moved (sent or received)
        self.kept = 0  # an upload's bytes the server has stored
        self.rate = _Rate()
        self.phase = ""
        self.drawn_at = -math.inf
        self.started = time.monotonic()

    def hashing(self, done: int, total: int) -> None:
        self._draw("hashing", done, total, final=False, force=done >= total)

    def __call__(self, done: int, total: int) -> None:
        self.rate.add(time.monotonic(), done)
        self.sent = done
        self._draw("moving", done, total, final=done >= total and not self.upload)

    def stored(self, done: int, total: int) -> None:
        self.kept = done
        finished = done >= total
        screen().resume_from = None if finished else done / total
        if finished and screen().open_line and self.phase != "done":
            self._draw("moving", total, total, final=True)  # no bytes needed sending (or the last did not say so)
        elif self.phase == "moving":
            self._draw("moving", self.sent, total, final=False, force=True)

    def _draw(self, phase: str, done: int, total: int, *, final: bool, force: bool = False) -> None:
        stream = sys.stderr
        if not _is_terminal(stream) or self.phase == "done":
            return
        now = time.monotonic()
        if not (final or force) and phase == self.phase and now - self.drawn_at < self.REDRAW_SECONDS:
            return
        self.phase, self.drawn_at = ("done" if final else phase), now
        line = self.line(phase, min(done, total), total, shutil.get_terminal_size().columns - 1, now=now, final=final)
        current = screen()
        padding = " " * max(current.open_line - display_width(line), 0)
        stream.write("\r" + line + padding + ("\n" if final else ""))
        stream.flush()
        current.open_line = 0 if final else display_width(line)

    def line(self, phase: str, done: int, total: int, columns: int, *, now: float, final: bool = False) -> str:
        """The line as drawn at a terminal `columns` wide: the label in a fixed width (so that
        bars line up whatever the script of the name), then the bar, then the figures that fit.
        The figures have fixed widths, so that the bar keeps its length from draw to draw."""
        share = min(done / total, 1.0) if total else 1.0
        kept = share  # of a download, or before the server is heard of: the bar in one tone
        if self.upload and phase == "moving" and not final and total:
            kept = min(self.kept / total, share)
        label = f"hashing {self.label}" if phase == "hashing" else self.label
        label_columns = min(self.LABEL_COLUMNS, max(columns // 4, 8))
        widest = self._figures("moving", share, kept, done, total, now)  # what sets the bar's length
        shown = self._figures("done" if final else phase, share, kept, done, total, now)
        for room, figures in zip(widest, shown):
            bar_columns = min(columns - label_columns - len(room) - 3, 40)
            if bar_columns >= 5:
                filled, stored = int(share * bar_columns), int(kept * bar_columns)
                bar = "#" * stored + "=" * (filled - stored) + "." * (bar_columns - filled)
                return f"{fit(label, label_columns)} [{bar}]{figures.ljust(len(room))}"
        return fit(label, max(columns - len(shown[-1]), 1)) + shown[-1]

    def _figures(self, phase: str, share: float, kept: float, done: int, total: int, now: float) -> list[str]:
        """What follows the bar, from the most to the least; ASCII (a column a character), each
        as wide as its counterpart of the moving phase, or narrower."""
        done_share = f" {share:6.1%}"
        if phase == "hashing":
            return [done_share] * 5
        if phase == "done":
            rate = self.rate.average(now, done)
            took = f"  in {_clock(now - self.started)}"
            speed = f"  {human_size(rate) + '/s' if rate else '':>12}"
            return [f"{done_share}  {human_size(total):>10}{speed}{took}", done_share + took, done_share + took, done_share, done_share]
        rate = self.rate.per_second
        speed = f"  {human_size(rate) + '/s' if rate else '-- B/s':>12}"
        # Unknown before the rate is measured, and once all is sent (the server is storing the rest).
        eta = _clock((total - done) / rate) if rate and done < total else "--:--"
        left = f"  ETA {eta:<7}"  # hours are rare: on the right
        if self.upload:
            both = f"{done_share} sent, {kept:6.1%} stored"
            return [both + speed + left, both + left, both, f" {kept:6.1%} stored", f" {kept:6.1%}"]
        sizes = f"  {human_size(done):>10}/{human_size(total):<10}"
        return [done_share + sizes + speed + left, done_share + speed + left, done_share + left, done_share, done_share]
