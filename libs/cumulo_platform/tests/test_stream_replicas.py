"""CUMULO_NATS_STREAM_REPLICAS: how many copies of the event streams a JetStream cluster keeps.
Every service makes sure the streams exist as it sees them, so all of them must say the
cluster's count (the production overlay sets 3 for its three-node cluster)."""

from __future__ import annotations

import pytest
from nats.js.errors import ServerError

from cumulo_devstack.testing import identity
from cumulo_platform.events import DEAD_LETTER_STREAM, STREAM_NAME, Nats, stream_configs
from cumulo_platform.identity import OPERATOR
from cumulo_platform.settings import Env, PlatformSettings, SettingsError

BASE = {"DATABASE_URL": "postgresql://localhost/cumulo"}


def settings(**environ: str) -> PlatformSettings:
    return PlatformSettings.from_env("blob", Env("blob", {**BASE, **environ}))


def test_a_single_server_keeps_one_copy_unless_told():
    assert settings().nats_stream_replicas == 1
    assert {config.num_replicas for config in stream_configs()} == {1}


def test_the_setting_sets_the_copies_of_both_streams():
    replicas = settings(CUMULO_NATS_STREAM_REPLICAS="3").nats_stream_replicas
    configs = stream_configs(replicas)
    assert [config.name for config in configs] == [STREAM_NAME, DEAD_LETTER_STREAM]
    assert {config.num_replicas for config in configs} == {3}
    # Everything else is what a single server gets.
    single = {config.name: config.as_dict() for config in stream_configs(1)}
    for config in configs:
        assert {**config.as_dict(), "num_replicas": 1} == single[config.name]


@pytest.mark.parametrize("value", ["0", "6", "three"])
def test_a_count_jetstream_cannot_keep_is_refused_naming_the_variable(value):
    with pytest.raises(SettingsError, match="NATS_STREAM_REPLICAS"):
        settings(CUMULO_NATS_STREAM_REPLICAS=value)


async def test_the_client_asks_the_server_for_the_count_it_was_given(infra):
    """The session's NATS is a single server: it keeps one copy, and refuses three (in a
    cluster the same request makes three, tests/test_manifests_start.py)."""
    single = Nats(infra.nats.url, identity=identity(OPERATOR))
    try:
        info = await (await single.jetstream()).stream_info(STREAM_NAME)
        assert info.config.num_replicas == 1
    finally:
        await single.close()
    three = Nats(infra.nats.url, identity=identity(OPERATOR), stream_replicas=3)
    try:
        with pytest.raises(ServerError, match="replicas > 1 not supported in non-clustered mode"):
            await three.jetstream()
    finally:
        await three.close()
