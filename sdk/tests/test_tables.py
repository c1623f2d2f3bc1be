"""Listings (cumulo_sdk.tables): columns line up on the screen whatever the script of a
name, and the header is there at a terminal only, so that a pipe's first line is a row."""

from __future__ import annotations

import io

import pytest

from cumulo_sdk.console import display_width
from cumulo_sdk.tables import Column, print_table, table_lines

COLUMNS = [Column("ID"), Column("NAME"), Column("SIZE", right=True), Column("NOTE")]
ROWS = [
    ["f1", "holiday.mp4", "1.2 MiB", ""],
    ["f2", "假期照片-北京上海.mp4", "12 B", "blocked"],
    ["f3", "cafe\u0301 notes.txt", "100.0 GiB", ""],
    ["f4", "ｆｕｌｌｗｉｄｔｈ.txt", "3 B", ""],
]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def starts(line: str, cell: str) -> int:
    return display_width(line[: line.index(cell)])


def test_columns_line_up_by_display_width():
    lines = table_lines(COLUMNS, ROWS, header=True)
    assert lines[0].split() == ["ID", "NAME", "SIZE", "NOTE"]
    sizes = [row[2] for row in ROWS]
    # A right-aligned column ends in one screen column; the next starts in one.
    assert len({starts(line, size) + display_width(size) for line, size in zip(lines[1:], sizes)}) == 1, lines
    assert starts(lines[2], "blocked") == starts(lines[0], "NOTE"), lines
    assert all(line == line.rstrip() for line in lines), lines  # an empty last cell leaves no trailing spaces
    assert lines[1].startswith("f1  holiday.mp4 ")


def test_no_rows_no_header():
    assert table_lines(COLUMNS, [], header=True) == []


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_the_header_is_printed_at_a_terminal_only(monkeypatch, terminal):
    out = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    print_table(COLUMNS, ROWS)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(ROWS) + terminal
    assert lines[0].split()[0] == ("ID" if terminal else "f1")
