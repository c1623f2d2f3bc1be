"""The web console (web/, built into web/dist) as the gateway serves it: Envoy answers each
built file itself (a direct response read from the file when the config loads), no Python on
the way. Hashed assets under /assets/ are cached for a year; every other GET that is not the
API is a page of the console (index.html, never cached), so /files/…, /s/<token> and
/reactivate?token=… open where they point. Every answer carries a strict
Content-Security-Policy: only the console's own scripts and styles, nothing inline, no framing,
and no Referer (page URLs can hold share tokens)."""

from __future__ import annotations

import dataclasses
import json
import mimetypes
import pathlib
import urllib.parse
from typing import Any

ASSETS = "assets"
INDEX = "index.html"
# Envoy keeps direct-response bodies in memory; a built file larger than this is a mistake.
MAX_FILE_BYTES = 4 * 1024 * 1024
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".woff2": "font/woff2",
    ".png": "image/png",
}

CONFIG = "config.json"  # what the console reads at start: the gateway's settings for it


def content_security_policy(map_tiles: str = "") -> str:
    """Only the console's own origin, but for map tiles from the configured tile server."""
    tiles = f" {_origin(map_tiles)}" if map_tiles else ""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' blob: data:{tiles}",
            "connect-src 'self'",
            "font-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "strict-transport-security": "max-age=31536000",
}
GRPC_PATH = r"/[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+/.*"
LONG_CACHE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"


@dataclasses.dataclass(frozen=True)
class Console:
    """The built console: `served_from` is where Envoy reads the files (the folder itself, or
    where Kubernetes mounts it); `files` the paths inside it, read from the build."""

    served_from: str
    files: tuple[str, ...]
    # A tile server's URL template ({z}/{x}/{y}) for the devices page's map; "": a plain grid.
    map_tiles: str = ""

    def __post_init__(self) -> None:
        if self.map_tiles:
            parts = urllib.parse.urlsplit(self.map_tiles)
            if parts.scheme != "https" or not parts.netloc or not all(f"{{{k}}}" in self.map_tiles for k in "zxy"):
                raise ValueError("the map tiles setting is an https URL with {z}, {x} and {y} in it")

    @classmethod
    def of(cls, built: pathlib.Path, served_from: str | None = None, map_tiles: str = "") -> Console:
        if not (built / INDEX).is_file():
            raise ValueError(f"{built} holds no built console ({INDEX}): run `make web`")
        files = []
        for path in sorted(p for p in built.rglob("*") if p.is_file()):
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"{path} is larger than {MAX_FILE_BYTES} bytes: not served")
            files.append(path.relative_to(built).as_posix())
        return cls(served_from or str(built.resolve()), tuple(files), map_tiles)


def _type(name: str) -> str:
    suffix = pathlib.PurePosixPath(name).suffix
    return TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _answer(console: Console, name: str, cache: str, body: dict[str, str] | None = None) -> dict[str, Any]:
    headers = {
        **SECURITY_HEADERS,
        "content-security-policy": content_security_policy(console.map_tiles),
        "content-type": _type(name),
        "cache-control": cache,
    }
    return {
        "direct_response": {"status": 200, "body": body or {"filename": f"{console.served_from}/{name}"}},
        "response_headers_to_add": [
            {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"} for key, value in headers.items()
        ],
    }


_READ = [{"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}]


def console_routes(console: Console) -> list[dict[str, Any]]:
    """After the API's routes: each built file at its path, then any other GET a page."""
    settings = json.dumps({"mapTiles": console.map_tiles})
    routes = [{"match": {"path": f"/{CONFIG}", "headers": _READ}, **_answer(console, CONFIG, NO_CACHE, {"inline_string": settings})}]
    for name in console.files:
        if name == INDEX:
            continue
        cache = LONG_CACHE if name.startswith(f"{ASSETS}/") else NO_CACHE
        routes.append({"match": {"path": f"/{name}", "headers": _READ}, **_answer(console, name, cache)})
    # An asset this build does not have (a tab of an older one asks) is missing, not the page;
    # so is anything shaped like a gRPC method (/package.Service/Method) the routes before did
    # not take: an internal service's path is not a page either.
    missing = {"direct_response": {"status": 404, "body": {"inline_string": "no such file"}}}
    routes.append({"match": {"prefix": f"/{ASSETS}/"}, **missing})
    routes.append({"match": {"safe_regex": {"regex": GRPC_PATH}}, **missing})
    routes.append({"match": {"prefix": "/", "headers": _READ}, **_answer(console, INDEX, NO_CACHE)})
    return routes
