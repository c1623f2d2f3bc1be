"""The terms of service as shipped with the auth service: one plain-text file per version,
`<version>.txt` beside this module, whose first line names its version.
CUMULO_AUTH_TERMS_VERSION says which of them is current; a version with no text, or a text
that names another version, stops the service at start-up rather than serve terms nobody
can read (or the wrong ones)."""

from __future__ import annotations

import importlib.resources
import re

from cumulo_platform.settings import SettingsError

SETTING = "CUMULO_AUTH_TERMS_VERSION"
# A version names a file: letters, digits, dots and dashes only (no path).
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,31}$")


def shipped_versions() -> list[str]:
    folder = importlib.resources.files(__name__)
    return sorted(entry.name.removesuffix(".txt") for entry in folder.iterdir() if entry.name.endswith(".txt"))


def load(version: str) -> str:
    """The text of the terms of `version`; SettingsError (naming the setting) when there is none."""
    shipped = shipped_versions()
    if not _VERSION.match(version) or version not in shipped:
        raise SettingsError(
            f"{SETTING} is {version!r}, but no terms text of that version is shipped "
            f"(cumulo_auth/terms/ has {', '.join(shipped) or 'none'}); add <version>.txt there or pick one of those"
        )
    text = (importlib.resources.files(__name__) / f"{version}.txt").read_text(encoding="utf-8")
    check_names_version(version, text)
    return text


def check_names_version(version: str, text: str) -> None:
    """A text copied to a new version's file and not updated would be served as that version."""
    first_line = text.split("\n", 1)[0].strip()
    if not re.search(rf"\bversion {re.escape(version)}$", first_line):
        raise SettingsError(
            f"cumulo_auth/terms/{version}.txt (the text {SETTING} chooses) must name its version on its first line, "
            f"ending 'version {version}'; it begins {first_line[:80]!r}"
        )
