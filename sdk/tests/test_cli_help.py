"""Every command of `cumulo` and `cumulo-admin` says what it does in one line, every option
and positional says what it takes, and every listing can answer in JSON for scripts. The
parsers are walked, so a command added without help fails here."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from cumulo_sdk import admin, cli

PARSERS = {"cumulo": cli.build_parser, "cumulo-admin": admin.build_parser}

LISTINGS = {
    "cumulo": [
        "sessions", "files ls", "trash ls", "share ls", "share inbox", "devices ls", "devices history", "devices commands",
        "sync zones", "backup ls", "backup show", "report cases",
    ],
    "cumulo-admin": [
        "lifecycle list", "lifecycle purges", "moderation queue", "moderation audit", "moderation blocklist ls",
        "events dead-letters",
    ],
}


def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser, dict[str, str | None]]]:
    """(command path, its parser, the one-line help of each of its subcommands)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", sub, helps
                yield from walk(sub, f"{path} {name}")


def commands(program: str) -> dict[str, argparse.ArgumentParser]:
    return {path.strip(): sub for path, sub, _ in walk(PARSERS[program]({}), "")}


@pytest.mark.parametrize("program", sorted(PARSERS))
def test_every_command_has_a_one_line_help(program):
    missing = []
    for path, _, helps in walk(PARSERS[program]({}), program):
        text = helps.get(path.rsplit(" ", 1)[-1])
        if not text or not text.strip() or "\n" in text:
            missing.append(path)
    assert not missing, f"commands without a one-line help: {missing}"


@pytest.mark.parametrize("program", sorted(PARSERS))
def test_every_option_and_positional_says_what_it_takes(program):
    top = PARSERS[program]({})
    missing = []
    for path, parser in [(program, top), *((f"{program} {p}", sub) for p, sub in commands(program).items())]:
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
                continue
            if not action.help or not action.help.strip():
                missing.append(f"{path}: {'/'.join(action.option_strings) or action.dest}")
        parser.format_help()  # a stray "%" in a help text fails only when someone asks for it
    assert not missing, f"without a description: {missing}"


@pytest.mark.parametrize("program", sorted(PARSERS))
def test_every_listing_has_json_output(program):
    found = commands(program)
    without = [path for path in LISTINGS[program] if "--json" not in found[path]._option_string_actions]
    assert not without, f"listings without --json: {without}"


def test_put_says_what_its_arguments_are():
    """The case the issue names: `files put` showed `local [folder]` and nothing more."""
    text = commands("cumulo")["files put"].format_help()
    for words in ("the file on this machine", "the folder to put it in", "--parents", "--rename", "--replace"):
        assert words in text
