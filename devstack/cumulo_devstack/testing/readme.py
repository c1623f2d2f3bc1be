"""The README's shell sessions, as tests paste them: the ```sh blocks of one section."""

from __future__ import annotations

import pathlib

README = pathlib.Path(__file__).resolve().parents[3] / "README.md"


def shell_blocks(heading: str, readme: str | None = None) -> list[str]:
    """The ```sh blocks of the section under `heading` (a line of the README, e.g.
    "### grpcurl"), up to the next heading."""
    text = README.read_text() if readme is None else readme
    lines = text[text.index(heading + "\n") + len(heading) + 1:].splitlines()
    blocks: list[str] = []
    current: list[str] | None = None
    for line in lines:
        if current is None:
            if line.startswith("#"):
                break  # the next heading
            if line.strip() == "```sh":
                current = []
        elif line.strip() == "```":
            blocks.append("\n".join(current) + "\n")
            current = None
        else:
            current.append(line)
    return blocks
