"""docs/operations.md's operator commands, as the toolbox pod runs them.

- The toolbox's environment is rendered from the manifests (`kubectl kustomize` of the dev
  overlay and of the prod overlay the runbooks are written for: its container's env, the
  config map it names, the identity Secrets it mounts), the
  cluster's addresses replaced by the test cloud's, and `cumulo-admin` runs as a process with
  exactly that environment and PATH: it reaches lifecycle, auth and NATS and answers, so
  `kubectl exec deploy/toolbox -- cumulo-admin ...` needs no flags.
- Every `cumulo-admin` command line of the runbooks parses with cumulo-admin's own parser, runs
  in the toolbox (or, for moderation, at a moderator's machine), and every pod or Job they
  name is one of the manifests': the runbooks cannot name a command or a resource that does
  not exist.
- The same command as a service's identity is refused: by the services' allow-list when the
  certificate is a service's, and before any call in a service's own pod, which holds no
  operator identity.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import io
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from cumulo_devstack.testing import eventually
from cumulo_devstack.testing.cli import console_script
from cumulo_devstack.testing.manifests import render
from cumulo_platform.identity import CA_FILE, CERT_FILE, KEY_FILE
from cumulo_sdk import admin

pytestmark = pytest.mark.timeout(300)

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operations.md"
OVERLAYS = [ROOT / "deploy" / "k8s" / "overlays" / name for name in ("dev", "prod")]
IDENTITY_SECRET = re.compile(r"cumulo-identity-(?P<name>[a-z-]+)")
TOOLBOX = "kubectl -n cumulo exec deploy/toolbox -- cumulo-admin"


# --- the manifests -------------------------------------------------------------------------------


@dataclasses.dataclass
class Pod:
    """What a Deployment's container sees: its environment and the Secrets mounted where."""

    env: dict[str, str]
    secret_mounts: dict[str, str]  # mount path -> Secret name


@pytest.fixture(scope="module", params=[p for p in OVERLAYS if p.is_dir()], ids=lambda p: p.name)
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """An overlay as kustomize renders it."""
    return render(request.param)


def named(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] == kind}


def pod_of(manifests: list[dict[str, Any]], deployment: str) -> Pod:
    """The Deployment's (first) container: envFrom resolved from the rendered ConfigMaps and
    Secrets (a Secret kept outside the repository, as production's, adds nothing), then its
    own env (a value from such a Secret stands as "from-a-secret"); its Secret volumes by
    mount path."""
    spec = named(manifests, "Deployment")[deployment]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(named(manifests, "ConfigMap")[source["configMapRef"]["name"]]["data"])
        elif "secretRef" in source and source["secretRef"]["name"] in named(manifests, "Secret"):
            secret = named(manifests, "Secret")[source["secretRef"]["name"]]
            env.update({k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()})
            env.update(secret.get("stringData", {}))
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", "from-a-secret")
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    mounts = {
        mount["mountPath"]: volumes[mount["name"]]["secret"]["secretName"]
        for mount in container.get("volumeMounts", [])
        if "secret" in volumes[mount["name"]]
    }
    return Pod(env, mounts)


def cluster_addresses(manifests: list[dict[str, Any]], backends: Mapping[str, str], infra: Any) -> dict[str, str]:
    """host:port inside the cluster -> where the test cloud has it: each rendered Service's
    port, and the cluster's own NATS and S3 (which the overlay names)."""
    found = {}
    for name, service in named(manifests, "Service").items():
        for port in service["spec"]["ports"]:
            if name in backends:
                found[f"{name}:{port['port']}"] = backends[name]
    found["nats:4222"] = infra.nats.url.removeprefix("nats://")
    found["s3:9000"] = infra.s3.endpoint.removeprefix("http://")
    return found


def localized(pod: Pod, addresses: Mapping[str, str], identities: pathlib.Path, folder: pathlib.Path) -> dict[str, str]:
    """The pod's environment on this machine: its addresses the test cloud's, and its identity
    folder one holding what the pod mounts under it (each identity Secret's files, as cert-manager
    writes them), the session's certificates standing for the cluster's."""
    env = {}
    for key, value in pod.env.items():
        for inside, here in addresses.items():
            value = re.sub(rf"(?<![\w.-]){re.escape(inside)}(?![\w.-])", here, value)
        env[key] = value
    identity_dir = pathlib.PurePosixPath(pod.env["CUMULO_IDENTITY_DIR"])
    for path, secret in pod.secret_mounts.items():
        match = IDENTITY_SECRET.fullmatch(secret)
        if match is None or not pathlib.PurePosixPath(path).is_relative_to(identity_dir):
            continue
        target = folder / pathlib.PurePosixPath(path).relative_to(identity_dir)
        target.mkdir(parents=True)
        for file in (CA_FILE, CERT_FILE, KEY_FILE):
            shutil.copy(identities / match["name"] / file, target / file)
    env["CUMULO_IDENTITY_DIR"] = str(folder)
    return env


async def cumulo_admin(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The installed `cumulo-admin` as a process with `env` and PATH, and nothing else."""
    process = await asyncio.create_subprocess_exec(
        str(console_script("cumulo-admin")), *args, env={**env, "PATH": os.environ["PATH"]},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return subprocess.CompletedProcess(["cumulo-admin", *args], process.returncode, out.decode(), err.decode())


@pytest.fixture
def toolbox_env(manifests, backends, infra, tmp_path) -> dict[str, str]:
    pod = pod_of(manifests, "toolbox")
    assert set(pod.secret_mounts.values()) == {"cumulo-identity-operator"}, pod.secret_mounts  # the operator's alone
    env = localized(pod, cluster_addresses(manifests, backends, infra), infra.identities, tmp_path / "toolbox-identity")
    # What cumulo-admin reads is all there, and all of it points at the test cloud.
    for key in ("CUMULO_LIFECYCLE_TARGET", "CUMULO_AUTH_TARGET", "NATS_URL"):
        assert "127.0.0.1:" in env[key], f"{key}={env[key]}: a cluster address the test cloud does not stand in for"
    assert (tmp_path / "toolbox-identity" / "operator" / CERT_FILE).exists()
    return env


# --- (a) the toolbox's own environment ---------------------------------------------------------


async def test_cumulo_admin_in_the_toolbox_needs_no_flags(toolbox_env, people, lifecycle, auth, infra):
    async def ok(*args: str) -> str:
        result = await cumulo_admin(toolbox_env, *args)
        assert result.returncode == 0, f"{' '.join(result.args)} -> {result.returncode}: {result.stdout}{result.stderr}"
        return result.stdout

    # The lifecycle's operator methods, through CUMULO_LIFECYCLE_TARGET and the operator identity.
    assert re.search(r"^stuck purges +\d+$", await ok("lifecycle", "report"), re.MULTILINE)
    stuck = await ok("lifecycle", "purges", "--stuck")
    assert stuck == "no stuck purges\n" or "STUCK" in stuck
    assert re.search(r"^would do \d+ actions?$", await ok("lifecycle", "sweep", "--dry-run", "--limit", "1"), re.MULTILINE)
    # NATS through NATS_URL, over TLS as the operator's NATS user.
    await ok("events", "dead-letters", "--limit", "1")

    # A legal hold as the runbook places it: the e-mail address looked up in auth
    # (CUMULO_AUTH_TARGET), the hold in the lifecycle, both with the toolbox's settings alone.
    person = await people.new()

    async def known() -> str | None:
        result = await cumulo_admin(toolbox_env, "lifecycle", "status", person.email)
        return result.stdout if result.returncode == 0 else None

    status = await eventually(known, timeout=60, what="the lifecycle to know the account")
    assert status is not None and f"account      {person.account_id}" in status
    held = await ok("--actor", "ops: test", "lifecycle", "hold", person.email, "--reason", "Court order 2027/114")
    assert "legal hold   yes: Court order 2027/114" in held
    assert "legal hold   yes: Court order 2027/114" in await ok("lifecycle", "status", person.email)
    released = await ok("--actor", "ops: test", "lifecycle", "release", person.email, "--reason", "Order lifted")
    assert "legal hold   no" in released


# --- (b) the runbooks name only what exists ------------------------------------------------------


def shell_lines(text: str) -> Iterator[str]:
    """The commands of the document's ```sh blocks, continuation lines joined."""
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        yield from (line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip() and not line.strip().startswith("#"))


def words_after(line: str, program: str) -> list[str]:
    """The arguments of `program` on a shell line: up to the end of its command (a pipe, `;`,
    `&&`, a redirection or the end of a command substitution); what the shell would substitute
    ($VAR, $(...)) stands as a placeholder value."""
    rest = line[line.index(program) + len(program):]
    rest = re.sub(r"\$\([^()]*\)", "1", rest)
    rest = re.sub(r"\$\{?\w+\}?", "1", rest)
    lexer = shlex.shlex(rest, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    words = []
    for word in lexer:
        if word and set(word) <= set(";&|<>()"):
            break
        words.append(word)
    return words


def resolves(parser: argparse.ArgumentParser, words: list[str]) -> bool:
    """`cumulo-admin WORDS --help`: each word names a subcommand of the one before."""
    for word in words:
        if word.startswith("-"):
            return True
        found = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
        if not found or word not in found[0].choices:
            return False
        parser = found[0].choices[word]
    return True


def test_every_cumulo_admin_command_of_the_runbooks_exists_and_runs_in_the_toolbox():
    lines = [line for line in shell_lines(DOC.read_text()) if "cumulo-admin" in line]
    assert len(lines) >= 20, lines  # every runbook has its commands
    parser = admin.build_parser({})
    refused = []
    for line in lines:
        words = words_after(line, "cumulo-admin")
        service = next((w for w in words if not w.startswith("-")), "")
        if "kubectl" in line:
            assert TOOLBOX in line, f"operator commands run in the toolbox: {line}"
        else:
            # Only a moderator, logged in at their own machine, runs cumulo-admin outside it.
            assert service == "moderation", f"not in the toolbox: {line}"
        if "--help" in words:
            if not resolves(parser, words[: words.index("--help")]):
                refused.append(line)
            continue
        complaint = io.StringIO()
        try:
            with contextlib.redirect_stderr(complaint):
                parser.parse_args(words)
        except SystemExit:
            refused.append(f"{line}\n    {complaint.getvalue().strip().splitlines()[-1]}")
    assert not refused, "commands cumulo-admin does not take:\n" + "\n".join(refused)


def test_the_runbooks_pods_and_jobs_are_the_manifests(manifests):
    text = DOC.read_text()
    deployments, jobs = set(named(manifests, "Deployment")), set(named(manifests, "Job"))
    for line in shell_lines(text):
        for name in re.findall(r"(?<=\s)deploy/([\w$-]+)(?![\w$/-])", line):
            assert name in deployments or name == "$d", f"no Deployment {name}: {line}"
        for name in re.findall(r"\bjob/([\w-]+)", line):
            assert name in jobs, f"no Job {name}: {line}"
        for loop in re.findall(r"for d in ([\w ]+); do", line):
            assert set(loop.split()) <= deployments, line
    # The introduction names every Deployment and migration Job there is.
    assert all(f"`{name}`" in text for name in deployments | jobs), deployments | jobs
    # A service's command runs in that service's pod, and the service takes it.
    for line in shell_lines(text):
        found = re.search(r"exec deploy/([\w-]+) -- python -m (cumulo_\w+) ([\w-]+)", line)
        if found is None:
            continue
        pod, module, command = found.groups()
        assert module in named(manifests, "Deployment")[pod]["spec"]["template"]["spec"]["containers"][0]["command"], line
        taken = subprocess.run([sys.executable, "-m", module, command, "--help"], capture_output=True, text=True, timeout=120)
        assert taken.returncode == 0, f"{line}\n{taken.stderr}"


# --- (c) not as a service ------------------------------------------------------------------------


async def test_a_services_identity_is_refused_the_operators_commands(manifests, backends, infra, tmp_path, lifecycle, auth):
    addresses = cluster_addresses(manifests, backends, infra)
    toolbox = pod_of(manifests, "toolbox")
    # The toolbox's settings, but the certificate presented as the operator's is lifecycle's.
    borrowed = Pod(toolbox.env, {path: "cumulo-identity-lifecycle" for path in toolbox.secret_mounts})
    env = localized(borrowed, addresses, infra.identities, tmp_path / "borrowed")
    for command in (["lifecycle", "purges", "--stuck"], ["lifecycle", "report"], ["auth", "rotate-signing-key"]):
        result = await cumulo_admin(env, *command)
        assert result.returncode == 1 and result.stdout == "", result
        assert "[CALLER_NOT_ALLOWED]" in result.stderr and "lifecycle" in result.stderr, result.stderr

    # `kubectl exec deploy/lifecycle -- cumulo-admin ...`: the lifecycle pod's own settings
    # and mounts hold no operator identity, so nothing is called at all.
    pod = pod_of(manifests, "lifecycle")
    assert set(pod.secret_mounts.values()) == {"cumulo-identity-lifecycle"}, pod.secret_mounts
    result = await cumulo_admin(localized(pod, addresses, infra.identities, tmp_path / "lifecycle-pod"), "lifecycle", "purges", "--stuck")
    assert result.returncode == 2 and result.stdout == "", result
    assert "has no folder operator/" in result.stderr, result.stderr
