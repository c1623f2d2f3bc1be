"""`cumulo-admin moderation` at a moderator's own machine: their login through the gateway and
no identity of the internal CA (that stays in the cluster's toolbox). Given account ids, the
runbook's hold, evidence export and release work; an e-mail address, which only the operator's
identity can look up, is refused with what to give instead (fixtures in conftest.py)."""

from __future__ import annotations

import re

from cumulo_devstack.testing import PASSWORD
from cumulo_devstack.testing.cli import run_command

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def test_a_moderator_without_the_operators_identity_holds_and_exports_by_account_id(admin, sign_up, gateway, moderation, tmp_path):
    moderator, owner = await sign_up(), await sign_up()
    code, _, err = await admin("auth", "roles", moderator.email, "moderator", "--reason", "joins trust and safety")
    assert code == 0, err
    # Only the moderator's own settings: where the gateway is, where their login is kept.
    desk = {"CUMULO_GATEWAY": gateway, "CUMULO_HOME": str(tmp_path / "desk"), "CUMULO_IDENTITY_DIR": ""}
    login = await run_command("cumulo", "login", moderator.email, environ=desk, stdin=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr

    async def ok(*args: str) -> str:
        result = await run_command("cumulo-admin", "moderation", *args, environ=desk)
        assert result.returncode == 0, f"{args} -> {result.returncode}: {result.stdout}{result.stderr}"
        return result.stdout

    await ok("hold", owner.account_id, "--reason", "Court order 2027/114")
    exported = await ok("export", owner.account_id, "--reason", "Court order 2027/114")
    export_id = re.search(rf"^export\s+({UUID})$", exported, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert f"evidence/{owner.account_id}/{export_id}/" in exported
    assert "intact:" in await ok("verify", export_id)
    await ok("release", owner.account_id, "--reason", "Order lifted")

    refused = await run_command("cumulo-admin", "moderation", "hold", owner.email, "--reason", "r", environ=desk)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "CUMULO_IDENTITY_DIR" in refused.stderr and f"give the account's id instead of {owner.email}" in refused.stderr
