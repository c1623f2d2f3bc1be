"""`cumulo` and `cumulo-admin` as the tests run them.

A command runs in-process by default: `main(argv, environ)` in a thread of its own, with its
own standard input and output. main() runs its own event loop (asyncio.run), which cannot nest
in the session's; the session's loop meanwhile serves the services the command calls. This is
what makes a command cost milliseconds instead of a Python start-up. Each command group keeps
one smoke test with `process=True`: the installed console script, in a process of its own.

    result = await run_command("cumulo", "whoami", environ={"CUMULO_HOME": ..., "CUMULO_GATEWAY": ...})
    result.returncode, result.stdout, result.stderr        # a subprocess.CompletedProcess

`environ` is all the command sees of the environment in-process, besides how the session's
gateway is reached (CUMULO_CA, CUMULO_PLAINTEXT) and the session's identities (CUMULO_IDENTITY_DIR:
cumulo-admin calls as the operator), unless `environ` sets them; a process inherits
the whole of the test process's; `stdin` is its standard input, not a terminal, so a password comes from its
first line. `start_command` returns a running command (a device agent) whose output can be
read as it comes and which can be interrupted as Ctrl-C would.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import io
import os
import pathlib
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, Protocol

Program = Literal["cumulo", "cumulo-admin"]
# A Ctrl-C the command did not handle: what a process killed by SIGINT answers (the commands
# themselves catch it and exit 130, cumulo_sdk.console.INTERRUPTED_EXIT).
INTERRUPTED = -signal.SIGINT


class Command(Protocol):
    """A command started by start_command, in-process or as a process."""

    args: list[str]

    @property
    def output(self) -> str:
        """What it has printed on standard output so far."""

    @property
    def returncode(self) -> int | None:
        """None while it runs (and until all its output is in)."""

    async def wait(self, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Its exit code and output once it ends; interrupted and a failure after `timeout` s."""

    def interrupt(self) -> None:
        """As Ctrl-C in its terminal."""


def start_command(program: Program, *argv: str, environ: Mapping[str, str], stdin: str = "", process: bool = False) -> Command:
    if process:
        return _Process(program, list(argv), environ, stdin)
    return _InProcess(program, list(argv), environ, stdin)


async def run_command(
    program: Program, *argv: str, environ: Mapping[str, str], stdin: str = "", process: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return await start_command(program, *argv, environ=environ, stdin=stdin, process=process).wait(timeout)


async def _bounded(command: Command, finished: asyncio.Future[Any], timeout: float) -> None:
    """Waits for `finished`; past `timeout`, interrupts the command and fails with its output."""
    try:
        await asyncio.wait_for(asyncio.shield(finished), timeout)
        return
    except TimeoutError:
        command.interrupt()
    try:
        await asyncio.wait_for(asyncio.shield(finished), 10)
    except TimeoutError:
        pass
    raise AssertionError(f"{' '.join(command.args)} still ran after {timeout} s; its output: {command.output}")


# --- in-process ------------------------------------------------------------------------------

# A command thread's own stdin, stdout and stderr. Every other thread (the session's, with the
# services' logs) keeps the process's streams.
_streams: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("cumulo_command_streams", default=None)
_STREAM_NAMES = ("stdin", "stdout", "stderr")


class _Routed:
    """Stands in for sys.stdin, sys.stdout or sys.stderr while commands run in-process."""

    def __init__(self, name: str, fallback: Any) -> None:
        self.name = name
        self.fallback = fallback

    def _stream(self) -> Any:
        streams = _streams.get()
        return self.fallback if streams is None else streams[self.name]

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._stream(), attribute)

    def __iter__(self) -> Iterator[str]:
        return iter(self._stream())


class _Routing:
    """The routed streams are in place while at least one command runs in-process. Only the
    session's event loop thread starts and settles commands, so a counter suffices."""

    running = 0
    replaced: dict[str, Any] = {}

    @classmethod
    def acquire(cls) -> None:
        if cls.running == 0:
            for name in _STREAM_NAMES:
                cls.replaced[name] = getattr(sys, name)
                setattr(sys, name, _Routed(name, cls.replaced[name]))
        cls.running += 1

    @classmethod
    def release(cls) -> None:
        cls.running -= 1
        if cls.running == 0:
            for name in _STREAM_NAMES:
                if isinstance(getattr(sys, name), _Routed):  # not since replaced by pytest's capture
                    setattr(sys, name, cls.replaced[name])
            cls.replaced.clear()


def _main_of(program: Program) -> Callable[[list[str], Mapping[str, str]], int]:
    if program == "cumulo":
        from cumulo_sdk.cli import main
    else:
        from cumulo_sdk.admin import main
    return main


def _exit_code(code: object, stderr: io.StringIO) -> int:
    """The exit code of a process ended by SystemExit(code), as the interpreter makes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=stderr)
    return 1


def _connection_settings() -> dict[str, str]:
    """The test session's way to its gateways (the development CA) and to its services (the
    internal CA's identities), as a shell would pass them."""
    return {name: os.environ[name] for name in ("CUMULO_CA", "CUMULO_PLAINTEXT", "CUMULO_IDENTITY_DIR") if name in os.environ}


class _InProcess:
    def __init__(self, program: Program, argv: list[str], environ: Mapping[str, str], stdin: str) -> None:
        self.args = [program, *argv]
        self._stdout, self._stderr = io.StringIO(), io.StringIO()
        self._code: int | None = None
        loop = asyncio.get_running_loop()
        self._finished: asyncio.Future[int] = loop.create_future()
        self._finished.add_done_callback(lambda _: _Routing.release())
        streams = {"stdin": io.StringIO(stdin), "stdout": self._stdout, "stderr": self._stderr}
        main = _main_of(program)

        def work() -> None:
            code = 1
            try:
                _streams.set(streams)
                code = self._run(main, argv, {**_connection_settings(), **environ})
            finally:
                self._code = code
                loop.call_soon_threadsafe(self._finished.set_result, code)

        self._thread = threading.Thread(target=work, name=" ".join(self.args[:3]), daemon=True)
        _Routing.acquire()
        self._thread.start()

    def _run(self, main: Callable[[list[str], Mapping[str, str]], int], argv: list[str], environ: dict[str, str]) -> int:
        try:
            return main(argv, environ)
        except SystemExit as exit:
            return _exit_code(exit.code, self._stderr)
        except KeyboardInterrupt:
            traceback.print_exc(file=self._stderr)
            return INTERRUPTED
        except BaseException:  # what the interpreter would print before exiting with 1
            traceback.print_exc(file=self._stderr)
            return 1

    @property
    def output(self) -> str:
        return self._stdout.getvalue()

    @property
    def returncode(self) -> int | None:
        return self._code

    async def wait(self, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        await _bounded(self, self._finished, timeout)
        return subprocess.CompletedProcess(self.args, self._finished.result(), self._stdout.getvalue(), self._stderr.getvalue())

    def interrupt(self) -> None:
        # A KeyboardInterrupt raised in the command's thread, as SIGINT raises it in a process's
        # main thread: its event loop stops and cancels what runs, as after Ctrl-C.
        if self._code is None and self._thread.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread.ident), ctypes.py_object(KeyboardInterrupt))


# --- as a process ----------------------------------------------------------------------------


def console_script(program: Program) -> pathlib.Path:
    """The installed command, beside the interpreter running the tests."""
    script = pathlib.Path(sys.executable).with_name(program)
    assert script.exists(), f"{script} is not installed (pip install -e .)"
    return script


class _Process:
    def __init__(self, program: Program, argv: list[str], environ: Mapping[str, str], stdin: str) -> None:
        self.args = [str(console_script(program)), *argv]
        self._stdout, self._stderr = io.StringIO(), io.StringIO()
        self._process: asyncio.subprocess.Process | None = None
        self._started = asyncio.ensure_future(self._start({**os.environ, **environ}, stdin.encode()))

    async def _start(self, environ: dict[str, str], stdin: bytes) -> int:
        self._process = await asyncio.create_subprocess_exec(
            *self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ
        )
        assert self._process.stdin and self._process.stdout and self._process.stderr
        self._process.stdin.write(stdin)
        self._process.stdin.close()

        async def read(source: asyncio.StreamReader, sink: io.StringIO) -> None:
            async for line in source:
                sink.write(line.decode())

        await asyncio.gather(read(self._process.stdout, self._stdout), read(self._process.stderr, self._stderr))
        return await self._process.wait()

    @property
    def output(self) -> str:
        return self._stdout.getvalue()

    @property
    def returncode(self) -> int | None:
        return self._started.result() if self._started.done() else None

    async def wait(self, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        try:
            await _bounded(self, self._started, timeout)
        finally:
            if self._process is not None and self._process.returncode is None:
                self._process.kill()
                await self._started
        return subprocess.CompletedProcess(self.args, self._started.result(), self._stdout.getvalue(), self._stderr.getvalue())

    def interrupt(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGINT)
