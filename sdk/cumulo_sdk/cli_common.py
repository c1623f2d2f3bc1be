"""What the command handlers of `cumulo` and `cumulo-admin` share beyond console.py: an answer
shown to a person or, with `--json`, as one JSON document for scripts; a question to the
person at the terminal; and a refusal that says what to do instead."""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from cumulo_sdk import console
from cumulo_sdk.console import ctrl_c_raises, when_iso
from cumulo_sdk.files import path_parts
from cumulo_sdk.tables import Column, print_table

JSON_HELP = "print one JSON document instead, for scripts (stable keys, times in ISO-8601 UTC)"
Row = TypeVar("Row")


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help=JSON_HELP)


def print_json(document: Any) -> None:
    print(json.dumps(document, ensure_ascii=False, indent=2))


def show(args: argparse.Namespace, document: Any, person: Callable[[], int | None]) -> int:
    """A command's answer: with --json, `document` (the messages in it as `plain` makes them);
    else what `person` prints. The exit code is person's, or 0."""
    if args.json:
        print_json(jsonable(document))
        return 0
    return person() or 0


def show_rows(
    args: argparse.Namespace, key: str, rows: Sequence[Row], line: Callable[[Row], object], *, empty: str = "", **context: Any
) -> int:
    """A listing: with --json, `{**context, key: rows}`; else `line(row)` prints each row, and
    `empty` is said when there is none."""

    def person() -> None:
        for row in rows:
            line(row)
        if empty and not rows:
            print(empty)

    return show(args, {**context, key: list(rows)}, person)


def show_table(
    args: argparse.Namespace, key: str, rows: Sequence[Row], columns: Sequence[Column], cells: Callable[[Row], Sequence[str]],
    *, empty: str = "", **context: Any,
) -> int:
    """A listing as a table (tables.py): with --json, `{**context, key: rows}`; else a line a
    row, aligned, under a header at a terminal, and `empty` said when there is none."""

    def person() -> None:
        print_table(columns, [cells(row) for row in rows])
        if empty and not rows:
            print(empty)

    return show(args, {**context, key: list(rows)}, person)


def jsonable(value: Any) -> Any:
    if isinstance(value, Message):
        return plain(value)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def remote_path(folder: str, name: str = "") -> str:
    """A folder (and a name in it) as "/photos/2026/beach.jpg", however it was typed."""
    return "/" + "/".join(path_parts(folder) + ([name] if name else []))


def fail(text: str, program: str = "cumulo") -> None:
    console.end_line()  # not on the line of a progress bar drawn before
    print(f"{program}: {text}", file=sys.stderr)


def enum_word(enum: Any, number: int) -> str | None:
    """NODE_KIND_FILE of NodeKind as "file"; the unspecified value as None."""
    value = enum.values_by_number.get(number)
    if value is None:
        return str(number)  # a value newer than this client
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
    word = value.name.removeprefix(prefix).lower()
    return None if word == "unspecified" else word


def plain(message: Message) -> dict[str, Any]:
    """A message for `--json`: every field, under the proto's own field name (v1 never renames
    one), enums as lower-case words, times as ISO-8601 UTC, None for what is not set."""
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            out[field.name] = {key: _value(field.message_type.fields_by_name["value"], item) for key, item in value.items()}
        elif field.is_repeated:
            out[field.name] = [_value(field, item) for item in value]
        elif field.message_type is not None and not message.HasField(field.name):
            out[field.name] = None
        else:
            out[field.name] = _value(field, value)
    return out


def _value(field: Any, value: Any) -> Any:  # a FieldDescriptor (upb's or the pure one)
    if field.message_type is not None:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return when_iso(value)
        return plain(value)
    if field.enum_type is not None:
        return enum_word(field.enum_type, value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode()
    return value


def at_terminal() -> bool:
    """A person is there to answer: standard input is a terminal (a script's pipe is not)."""
    return sys.stdin.isatty()


def ask(question: str) -> str:
    """The person's answer, stripped and lower-cased ("" at the end of input). The question
    goes to standard error, so that standard output stays the command's result."""
    print(question, end=" ", file=sys.stderr, flush=True)
    with ctrl_c_raises():
        return sys.stdin.readline().strip().lower()
