"""Listings as a person reads them: columns aligned by display width (a Chinese name takes
two columns a character, a combining accent none), two spaces apart, under a header line.

The header is printed only when standard output is a terminal. Piped, the first line is the
first row and every line is one, as the README's `awk 'NR==1 {print $1}'` expects; the first
column is the id a later command takes. `--json` is the form for scripts that want names."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

from cumulo_sdk.console import display_width

GAP = "  "


@dataclasses.dataclass(frozen=True)
class Column:
    header: str
    right: bool = False  # counts and sizes: their last digits line up


def _padded(text: str, width: int, right: bool) -> str:
    room = " " * max(width - display_width(text), 0)
    return room + text if right else text + room


def table_lines(columns: Sequence[Column], rows: Sequence[Sequence[str]], *, header: bool) -> list[str]:
    """The lines of the table (none for no rows: a header alone says nothing)."""
    if not rows:
        return []
    lines = ([[column.header for column in columns]] if header else []) + [list(row) for row in rows]
    widths = [max(display_width(line[i]) for line in lines) for i in range(len(columns))]
    return [
        GAP.join(_padded(cell, width, column.right) for cell, width, column in zip(line, widths, columns)).rstrip()
        for line in lines
    ]


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    isatty = getattr(sys.stdout, "isatty", None)
    for line in table_lines(columns, rows, header=bool(isatty and isatty())):
        print(line)
