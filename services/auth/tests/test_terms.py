"""The terms of service a person is asked to accept can be read (GetTerms serves the shipped
text of the configured version, to anyone with a registered client), and a configured
version with no text, or the wrong one, stops the service at start-up. CheckNewPassword
applies Register's password rule alone, so a client can say so before the second prompt."""

from __future__ import annotations

import asyncio
import fnmatch
import pathlib
import sys
import tomllib

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_auth import terms
from cumulo_devstack.testing import PASSWORD, call, expect_error, forged_access_token, open_channel, unique_email
from cumulo_devstack.testing.methods import with_client_id
from cumulo_platform.settings import SettingsError

TERMS = "2026-11"
ROOT = pathlib.Path(__file__).resolve().parents[3]


def headers(kind: str, signing_key: tuple[str, bytes]) -> list[tuple[str, str]]:
    return {
        "no token": with_client_id(),
        "garbage token": with_client_id("not.a.token"),
        "forged token": with_client_id(forged_access_token(signing_key)),
    }[kind]


@pytest.mark.parametrize("kind", ["no token", "garbage token", "forged token"])
async def test_anyone_reads_the_current_terms_through_the_gateway(gateway, signing_key, kind):
    """An anonymous method: a token, good or bad, is not looked at, so a stale one in a
    client's store does not stop a person reading the terms."""
    async with open_channel(gateway) as channel:
        response = await auth_pb2_grpc.AuthServiceStub(channel).GetTerms(
            auth_pb2.GetTermsRequest(), metadata=headers(kind, signing_key), timeout=10
        )
    assert response.version == TERMS
    assert response.text.splitlines()[0].endswith(f"version {TERMS}")
    assert response.text == terms.load(TERMS)
    assert "12 consecutive calendar months" in response.text  # the clause people ask about


async def test_the_terms_need_a_registered_client(gateway):
    async with open_channel(gateway) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await auth_pb2_grpc.AuthServiceStub(channel).GetTerms(
                auth_pb2.GetTermsRequest(), metadata=with_client_id(client_id="nope"), timeout=10
            )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_configured_version_without_a_text_is_named():
    with pytest.raises(SettingsError) as refused:
        terms.load("2099-01")
    assert "CUMULO_AUTH_TERMS_VERSION" in str(refused.value) and TERMS in str(refused.value)
    with pytest.raises(SettingsError):
        terms.load("../../etc/passwd")  # a version names a shipped file, nothing else


def test_a_text_naming_another_version_is_refused():
    copied = terms.load(TERMS)
    with pytest.raises(SettingsError) as refused:
        terms.check_names_version("2027-01", copied)
    assert "version 2027-01" in str(refused.value)


async def test_the_service_does_not_start_with_terms_it_cannot_show(tmp_path):
    """The message is the whole of what an operator sees: it names the setting."""
    environ = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "NATS_URL": "nats://127.0.0.1:1",
        "CUMULO_AUTH_TERMS_VERSION": "2099-01",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cumulo_auth", env=environ, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, (out, err)
    assert "CUMULO_AUTH_TERMS_VERSION is '2099-01'" in err.decode()
    assert "Traceback" not in err.decode()


def test_the_terms_texts_are_packaged():
    """The image installs the project (not editable): a text the package data leaves out
    would stop the service there and nowhere else. (setuptools matches a package's patterns
    against paths below that package's folder.)"""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    below = {"cumulo_auth.terms": "{}.txt", "cumulo_auth": "terms/{}.txt"}
    for version in terms.shipped_versions():
        packaged = any(
            fnmatch.fnmatch(path.format(version), pattern) and pattern.count("/") == path.count("/")
            for package, path in below.items()
            for pattern in config.get(package, []) + config.get("*", [])
        )
        assert packaged, f"cumulo_auth/terms/{version}.txt is not in [tool.setuptools.package-data]: {config}"


# --- a new password, checked before it is typed twice -----------------------------------------


@pytest.mark.parametrize(
    "password, contacts, says",
    [
        ("short", {}, "at least 8 characters"),
        ("password123", {}, "most common passwords"),
        ("          ", {}, "only spaces"),
        ("{email}", {"email": "{email}"}, "e-mail address or phone number"),
    ],
    ids=["short", "common", "spaces", "the-email"],
)
async def test_a_password_against_the_rule_is_refused_naming_it(direct, password, contacts, says):
    email = unique_email()
    request = auth_pb2.CheckNewPasswordRequest(
        password=password.format(email=email), **{k: v.format(email=email) for k, v in contacts.items()}
    )
    err = await expect_error(call(direct, direct.auth.CheckNewPassword, request), grpc.StatusCode.INVALID_ARGUMENT, field="password")
    assert says in err.message
    assert request.password not in err.message or len(request.password.strip()) == 0


@pytest.mark.parametrize("email", ["", "not an address", "someone@example.com"], ids=["none", "invalid", "valid"])
async def test_a_good_password_passes_whatever_the_contacts(direct, email):
    await call(direct, direct.auth.CheckNewPassword, auth_pb2.CheckNewPasswordRequest(password=PASSWORD, email=email))


@pytest.mark.parametrize("kind", ["no token", "garbage token", "forged token"])
async def test_checking_a_password_needs_no_account(auth, signing_key, kind):
    async with open_channel(auth.target) as channel:
        await auth_pb2_grpc.AuthServiceStub(channel).CheckNewPassword(
            auth_pb2.CheckNewPasswordRequest(password=PASSWORD), metadata=headers(kind, signing_key), timeout=10
        )
