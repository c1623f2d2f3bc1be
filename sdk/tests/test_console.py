"""How a command ends and how a transfer is drawn (cumulo_sdk.console), without servers: one
error line, the Ctrl-C line, a progress bar whose columns hold whatever the script of a file
name, and a rate that is not guessed from the first chunks."""

from __future__ import annotations

import asyncio
import contextvars
import io

import grpc
import pytest

from cumulo_sdk import console
from cumulo_sdk.console import (
    GATEWAY_HINT,
    INTERRUPTED_EXIT,
    ProgressBar,
    _Rate,
    display_width,
    failed,
    fit,
    run,
)
from cumulo_sdk.errors import CumuloRpcError

MIB = 1024 * 1024
NAMES = ["holiday.mp4", "假期照片-北京上海广州深圳杭州成都.mp4", "café\u0301 notes.txt", "ｆｕｌｌｗｉｄｔｈ.txt", "a"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def own_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a bar leaves on "the screen" (an open line, a resume point) stays with the test."""
    monkeypatch.setattr(console, "_screen", contextvars.ContextVar("test_screen"))


def at_terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    """Standard error as a terminal 100 columns wide (in the test's body: pytest puts its own
    capture back after the fixtures)."""
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    monkeypatch.setenv("COLUMNS", "100")
    return screen


def test_display_width_counts_wide_characters_twice_and_marks_not_at_all():
    assert display_width("holiday") == 7
    assert display_width("假期") == 4
    assert display_width("ｆ") == 2
    assert display_width("e\u0301") == 1
    assert display_width(fit("假期照片北京", 7)) == 7  # a wide character is never cut in half
    assert fit("假期照片北京", 7) == "假期照~"


@pytest.mark.parametrize("phase, final", [("hashing", False), ("moving", False), ("moving", True)])
def test_the_bar_starts_in_the_same_column_and_the_line_keeps_its_width_whatever_the_name(phase, final):
    lines = [ProgressBar(name).line(phase, 3 * MIB, 10 * MIB, 99, now=1.0, final=final) for name in NAMES]
    columns = {display_width(line[: line.index(" [")]) for line in lines}
    assert len(columns) == 1, lines
    assert len({display_width(line) for line in lines}) == 1, lines
    assert all(display_width(line) <= 99 for line in lines), lines


@pytest.mark.parametrize("columns", [12, 20, 40, 60, 79, 99, 159])
def test_a_narrower_terminal_shows_fewer_figures_rather_than_wrap(columns):
    for phase, final in (("hashing", False), ("moving", False), ("moving", True)):
        line = ProgressBar("假期照片.mp4").line(phase, MIB, 10 * MIB, columns, now=1.0, final=final)
        assert display_width(line) <= columns and "10.0%" in line, line


def test_the_bar_keeps_its_length_from_draw_to_draw():
    bar = ProgressBar("holiday.mp4")
    bar.rate.per_second = 5.0 * MIB
    lines = [bar.line("moving", done, 900 * MIB, 99, now=1.0) for done in (0, 2 * MIB, 37 * MIB, 512 * MIB, 899 * MIB)]
    lines.insert(0, bar.line("hashing", 3 * MIB, 900 * MIB, 99, now=1.0))
    assert len({line.index("]") for line in lines}) == 1, lines


def test_the_rate_is_smoothed_and_unknown_until_measured():
    rate = _Rate()
    rate.add(0.0, 2 * MIB)  # the first chunk, gone into buffers at once
    rate.add(0.01, 8 * MIB)
    assert rate.per_second is None  # hence "ETA --:--", not a guess from a burst
    rate.add(0.5, 9 * MIB)
    assert rate.per_second == pytest.approx(7 * MIB / 0.5)
    rate.add(1.5, 10 * MIB)  # one slow second moves the estimate, it does not replace it
    assert rate.per_second is not None and 1 * MIB < rate.per_second < 7 * MIB / 0.5
    line = ProgressBar("x").line("moving", 2 * MIB, 10 * MIB, 99, now=0.0)
    assert "ETA --:--" in line and "-- B/s" in line, line


def test_progress_is_drawn_over_itself_at_a_terminal_and_ends_its_line(monkeypatch):
    terminal = at_terminal(monkeypatch)
    bar = ProgressBar("假期照片.mp4")
    bar.hashing(10 * MIB, 10 * MIB)
    bar(2 * MIB, 10 * MIB)
    bar(10 * MIB, 10 * MIB)
    drawn = terminal.getvalue()
    assert drawn.startswith("\rhashing 假期照片.mp4") and drawn.endswith("\n"), drawn
    assert drawn.count("\n") == 1
    assert all(display_width(line) <= 99 for line in drawn.strip("\n").split("\r")), drawn


def test_nothing_is_drawn_when_standard_error_is_not_a_terminal(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    bar = ProgressBar("holiday.mp4")
    bar.hashing(MIB, 2 * MIB)
    bar(MIB, 2 * MIB)
    bar(2 * MIB, 2 * MIB)
    bar.stored(2 * MIB, 2 * MIB)
    assert log.getvalue() == ""


def test_an_error_is_one_line_with_the_reason_once(capsys):
    weak = CumuloRpcError(grpc.StatusCode.INVALID_ARGUMENT, "password: must be at least 10 characters", reason="INVALID_ARGUMENT")
    assert failed("cumulo", weak) == 1
    assert capsys.readouterr().err == "cumulo: password: must be at least 10 characters [INVALID_ARGUMENT]\n"
    limited = CumuloRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many attempts", reason="RATE_LIMITED", retry_after_seconds=29.2)
    failed("cumulo", limited)
    assert capsys.readouterr().err == "cumulo: too many attempts. Try again in 30 s. [RATE_LIMITED]\n"
    raw = CumuloRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: UNKNOWN: ipv4:…")
    failed("cumulo", raw)
    err = capsys.readouterr().err
    assert "failed to connect" not in err and err.endswith(" [UNAVAILABLE]\n") and err.count("\n") == 1, err
    away = CumuloRpcError(grpc.StatusCode.UNAVAILABLE, "cannot reach the cumulo gateway at h:1 (tried for 5 s)", reason="GATEWAY_UNREACHABLE")
    failed("cumulo", away)
    assert capsys.readouterr().err == f"cumulo: cannot reach the cumulo gateway at h:1 (tried for 5 s). {GATEWAY_HINT} [GATEWAY_UNREACHABLE]\n"


async def test_ctrl_c_is_one_line_and_exit_130_with_the_resume_point_when_there_is_one(capsys):
    async def uploading() -> int:
        ProgressBar("holiday.mp4").stored(629, 1000)  # what the server holds, as an upload tells it
        raise KeyboardInterrupt

    async def watching() -> int:
        raise KeyboardInterrupt

    # In a thread of its own, as a command runs: asyncio.run() cannot nest in the test's loop.
    assert await asyncio.to_thread(run, "cumulo", uploading) == INTERRUPTED_EXIT
    assert capsys.readouterr().err == "cumulo: interrupted; run the same command again to resume from 62%\n"
    assert await asyncio.to_thread(run, "cumulo-admin", watching) == INTERRUPTED_EXIT
    assert capsys.readouterr().err == "cumulo-admin: interrupted\n"


async def test_ctrl_c_between_the_steps_of_a_replacement_says_a_new_run_finishes_it(capsys):
    async def replacing() -> int:
        console.screen().unfinished = "finish replacing notes.txt"
        raise KeyboardInterrupt

    assert await asyncio.to_thread(run, "cumulo", replacing) == INTERRUPTED_EXIT
    assert capsys.readouterr().err == "cumulo: interrupted; run the same command again to finish replacing notes.txt\n"


async def test_an_unexpected_error_is_one_line_without_a_traceback_unless_debugging(capsys):
    async def broken() -> int:
        raise RuntimeError("the table of contents is inconsistent\nsecond line of detail")

    assert await asyncio.to_thread(run, "cumulo", broken) == 1
    assert capsys.readouterr().err == (
        "cumulo: unexpected error: RuntimeError: the table of contents is inconsistent "
        "(please report it; CUMULO_DEBUG=1 shows where it happened)\n"
    )
    with pytest.raises(RuntimeError):
        await asyncio.to_thread(run, "cumulo", broken, debug=True)
    assert console.debugging({"CUMULO_DEBUG": "1"}) and not console.debugging({})


async def test_an_error_of_this_machine_names_the_file_and_the_problem(capsys, tmp_path):
    async def full() -> int:
        open(tmp_path / "missing" / "report.pdf", "rb")
        return 0

    assert await asyncio.to_thread(run, "cumulo", full) == 1
    assert capsys.readouterr().err == f"cumulo: {tmp_path / 'missing' / 'report.pdf'}: No such file or directory\n"


def test_an_upload_is_not_done_when_its_last_byte_is_sent_but_when_the_server_stored_it(monkeypatch, capsys):
    """The bar shows what was sent and, apart, what the server has stored (where a new run
    resumes): at Ctrl-C the two agree, whatever was sent."""
    terminal = at_terminal(monkeypatch)
    bar = ProgressBar("假期照片.mp4", upload=True)
    bar.hashing(10 * MIB, 10 * MIB)
    bar.stored(0, 10 * MIB)
    bar(10 * MIB, 10 * MIB)  # all sent
    bar.stored(7.5 * MIB, 10 * MIB)  # what the server has written of it so far
    drawn = terminal.getvalue()
    assert "\n" not in drawn, drawn  # not finished
    last = drawn.split("\r")[-1]
    assert "100.0% sent,  75.0% stored" in last and "ETA --:--" in last, last
    assert "#=" in last and "." not in last[last.index("[") : last.index("]")], last
    assert console.screen().resume_from == 0.75

    bar.stored(10 * MIB, 10 * MIB)
    drawn = terminal.getvalue()
    assert drawn.endswith("\n") and drawn.count("\n") == 1, drawn
    assert "stored" not in drawn.split("\r")[-1] and " 100.0%" in drawn.split("\r")[-1], drawn
    assert console.screen().resume_from is None


def test_an_upload_bar_keeps_its_length_and_fits_narrow_terminals():
    bar = ProgressBar("holiday.mp4", upload=True)
    bar.rate.per_second = 5.0 * MIB
    lines = [bar.line("hashing", 3 * MIB, 900 * MIB, 99, now=1.0)]
    for sent, stored in ((0, 0), (37 * MIB, 16 * MIB), (900 * MIB, 880 * MIB)):
        bar.kept = stored
        lines.append(bar.line("moving", sent, 900 * MIB, 99, now=1.0))
    lines.append(bar.line("moving", 900 * MIB, 900 * MIB, 99, now=1.0, final=True))
    assert len({line.index("]") for line in lines}) == 1, lines
    assert "  4.1% sent,   1.8% stored" in lines[2], lines
    bar.kept = MIB
    for columns in (12, 20, 40, 60, 79, 99, 159):
        line = bar.line("moving", 3 * MIB, 10 * MIB, columns, now=1.0)
        assert display_width(line) <= columns and "10.0%" in line, (columns, line)
