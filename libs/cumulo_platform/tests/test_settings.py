"""Env precedence (CUMULO_<SERVICE>_X over CUMULO_X over default) and PlatformSettings."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from cumulo_platform.durations import IsoDuration
from cumulo_platform.settings import Env, PlatformSettings, SettingsError

BASE = {"DATABASE_URL": "postgresql://localhost/cumulo"}


def settings(**environ: str) -> PlatformSettings:
    return PlatformSettings.from_env("auth", Env("auth", {**BASE, **environ}))


# --- Env ---------------------------------------------------------------------------


def test_default_when_nothing_is_set():
    env = Env("auth", {})
    assert env.raw("GRPC_PORT") is None
    assert env.get("GRPC_PORT", 7101) == 7101
    assert env.get("LOG_LEVEL", "info") == "info"


def test_global_variable_overrides_default():
    env = Env("auth", {"CUMULO_GRPC_PORT": "9000"})
    assert env.get("GRPC_PORT", 7101) == 9000


def test_service_variable_overrides_global():
    env = Env("auth", {"CUMULO_GRPC_PORT": "9000", "CUMULO_AUTH_GRPC_PORT": "9100"})
    assert env.raw("GRPC_PORT") == "9100"
    assert env.get("GRPC_PORT", 7101) == 9100


def test_another_services_variable_is_ignored():
    env = Env("auth", {"CUMULO_STORAGE_GRPC_PORT": "9200", "CUMULO_GRPC_PORT": "9000"})
    assert env.get("GRPC_PORT", 7101) == 9000


def test_service_name_with_dash_maps_to_underscore():
    env = Env("find-my", {"CUMULO_FIND_MY_LOG_LEVEL": "debug", "CUMULO_LOG_LEVEL": "warning"})
    assert env.get("LOG_LEVEL", "info") == "debug"


def test_empty_service_variable_still_wins():
    env = Env("auth", {"CUMULO_AUTH_TERMS": "", "CUMULO_TERMS": "global"})
    assert env.get("TERMS", "default") == ""


def test_reads_process_environment_when_none_given(monkeypatch):
    monkeypatch.setenv("CUMULO_ZZ_TEST_SETTING", "42")
    monkeypatch.setenv("CUMULO_TESTSVC_ZZ_TEST_SETTING", "43")
    assert Env("testsvc").get("ZZ_TEST_SETTING", 0) == 43
    assert Env("other").get("ZZ_TEST_SETTING", 0) == 42


def test_environment_is_read_once():
    environ = {"CUMULO_LOG_LEVEL": "debug"}
    env = Env("auth", environ)
    environ["CUMULO_LOG_LEVEL"] = "error"
    assert env.get("LOG_LEVEL", "info") == "debug"


def test_values_are_converted_to_the_defaults_type():
    env = Env("auth", {"CUMULO_A": "12", "CUMULO_B": "2.5", "CUMULO_C": "text"})
    assert env.get("A", 0) == 12 and isinstance(env.get("A", 0), int)
    assert env.get("B", 1.0) == 2.5
    assert env.get("C", "x") == "text"


@pytest.mark.parametrize(("text", "expected"), [("1", True), ("true", True), ("Yes", True), ("on", True), ("0", False), ("false", False), ("NO", False), ("off", False)])
def test_flags(text, expected):
    assert Env("auth", {"CUMULO_MIGRATE_ON_START": text}).flag("MIGRATE_ON_START", not expected) is expected


def test_durations():
    env = Env("auth", {"CUMULO_AUTH_SESSION_TTL": "P30D"})
    assert env.duration("SESSION_TTL", "P90D") == IsoDuration.parse("P30D")
    assert env.duration("OTHER_TTL", "PT15M").as_timedelta() == dt.timedelta(minutes=15)


@pytest.mark.parametrize(
    ("name", "value", "call"),
    [
        ("GRPC_PORT", "seventy", lambda env: env.get("GRPC_PORT", 7101)),
        ("DRAIN_GRACE_SECONDS", "soon", lambda env: env.get("DRAIN_GRACE_SECONDS", 20.0)),
        ("MIGRATE_ON_START", "maybe", lambda env: env.flag("MIGRATE_ON_START", True)),
        ("SESSION_TTL", "90 days", lambda env: env.duration("SESSION_TTL", "P90D")),
    ],
)
def test_bad_global_value_raises_settings_error_naming_the_variable(name, value, call):
    env = Env("auth", {f"CUMULO_{name}": value})
    with pytest.raises(SettingsError, match=f"CUMULO_{name}"):
        call(env)


@pytest.mark.parametrize(
    ("name", "value", "call"),
    [
        ("GRPC_PORT", "seventy", lambda env: env.get("GRPC_PORT", 7101)),
        ("MIGRATE_ON_START", "maybe", lambda env: env.flag("MIGRATE_ON_START", True)),
        ("SESSION_TTL", "90 days", lambda env: env.duration("SESSION_TTL", "P90D")),
    ],
)
def test_bad_service_value_raises_settings_error_naming_the_service_variable(name, value, call):
    # The bad value is in CUMULO_AUTH_<NAME>; the message must send the operator there,
    # not to CUMULO_<NAME> (which may not even be set).
    env = Env("auth", {f"CUMULO_AUTH_{name}": value, f"CUMULO_{name}": "unused"})
    with pytest.raises(SettingsError, match=f"CUMULO_AUTH_{name}"):
        call(env)


# --- PlatformSettings ----------------------------------------------------------------


def test_platform_defaults():
    s = settings()
    assert s.service == "auth"
    # Production unless told otherwise: development registers well-known client apps.
    assert s.environment == "production" and not s.development
    assert s.database_url == BASE["DATABASE_URL"]
    assert s.nats_url == "nats://127.0.0.1:4222"
    assert s.grpc_port == 7101
    assert s.log_format == "json"
    assert s.last_access_interval == dt.timedelta(minutes=10)
    assert s.migrate_on_start is True
    assert s.drain_grace_seconds == 15.0


def test_the_preservation_bucket_takes_its_own_s3_keys_where_configured():
    """Separate credentials for the preservation bucket (evidence) and user content: with them
    set, only the preservation bucket's storage uses them; without, both use the service's."""
    from cumulo_platform.storage import Storage

    plain = settings(S3_ACCESS_KEY_ID="content-key", S3_SECRET_ACCESS_KEY="content-secret")
    assert (plain.preservation_access_key, plain.preservation_secret_key) == ("content-key", "content-secret")
    own = settings(
        S3_ACCESS_KEY_ID="content-key", S3_SECRET_ACCESS_KEY="content-secret",
        S3_PRESERVATION_ACCESS_KEY_ID="evidence-key", S3_PRESERVATION_SECRET_ACCESS_KEY="evidence-secret",
    )
    evidence = Storage.of(own, own.preservation_bucket)._settings
    content = Storage.of(own, "cumulo-blobs")._settings
    assert (evidence["aws_access_key_id"], evidence["aws_secret_access_key"]) == ("evidence-key", "evidence-secret")
    assert (content["aws_access_key_id"], content["aws_secret_access_key"]) == ("content-key", "content-secret")


def test_per_service_server_variable_wins_over_the_plain_one():
    s = settings(DATABASE_URL="postgresql://shared/db", CUMULO_AUTH_DATABASE_URL="postgresql://auth-only/db")
    assert s.database_url == "postgresql://auth-only/db"


def test_platform_precedence():
    s = settings(
        CUMULO_GRPC_PORT="9000",
        CUMULO_AUTH_GRPC_PORT="9100",
        CUMULO_LOG_LEVEL="debug",
        CUMULO_LAST_ACCESS_INTERVAL="PT5M",
        CUMULO_AUTH_LAST_ACCESS_INTERVAL="PT1M",
        CUMULO_ENVIRONMENT="development",
    )
    assert s.grpc_port == 9100
    assert s.log_level == "debug"
    assert s.last_access_interval == dt.timedelta(minutes=1)
    assert s.environment == "development" and s.development


def test_kubernetes_style_server_variables_win_over_cumulo_ones():
    s = settings(
        NATS_URL="nats://nats:4222",
        CUMULO_NATS_URL="nats://other:4222",
        S3_ENDPOINT="http://s3:9000",
        S3_ACCESS_KEY_ID="key",
        S3_SECRET_ACCESS_KEY="secret",
    )
    assert s.nats_url == "nats://nats:4222"
    assert (s.s3_endpoint, s.s3_access_key, s.s3_secret_key) == ("http://s3:9000", "key", "secret")


def test_cumulo_database_url_is_accepted():
    s = PlatformSettings.from_env("auth", Env("auth", {"CUMULO_AUTH_DATABASE_URL": "postgresql://x/y"}))
    assert s.database_url == "postgresql://x/y"


def test_settings_are_frozen():
    s = settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.grpc_port = 1  # type: ignore[misc]
    assert s.replace(grpc_port=1).grpc_port == 1 and s.grpc_port == 7101


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        ({"CUMULO_LOG_FORMAT": "xml"}, "CUMULO_LOG_FORMAT"),
        ({"CUMULO_ENVIRONMENT": "staging"}, "CUMULO_ENVIRONMENT"),
        ({"CUMULO_GRPC_PORT": "0"}, "CUMULO_GRPC_PORT"),
        ({"CUMULO_GRPC_PORT": "70000"}, "CUMULO_GRPC_PORT"),
        ({"CUMULO_GRPC_PORT": "x"}, "GRPC_PORT"),
        ({"CUMULO_DRAIN_GRACE_SECONDS": "30"}, "CUMULO_DRAIN_GRACE_SECONDS"),
        ({"CUMULO_MIGRATE_ON_START": "perhaps"}, "MIGRATE_ON_START"),
        ({"CUMULO_LAST_ACCESS_INTERVAL": "ten minutes"}, "LAST_ACCESS_INTERVAL"),
    ],
)
def test_validation_errors(environ, match):
    with pytest.raises(SettingsError, match=match):
        settings(**environ)


def test_database_url_is_required():
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        PlatformSettings.from_env("auth", Env("auth", {}))


def test_calendar_month_interval_is_a_settings_error_naming_the_variable():
    # An interval must have a fixed length; P1M is a valid duration but not a valid interval.
    # Start-up must fail with a SettingsError that names the variable, like every other bad value.
    with pytest.raises(SettingsError, match="LAST_ACCESS_INTERVAL"):
        settings(CUMULO_LAST_ACCESS_INTERVAL="P1M")


# --- the last-access interval follows the lifecycle's inactivity ------------------------------


@pytest.mark.parametrize(
    ("inactivity", "interval"),
    [
        (None, dt.timedelta(minutes=10)),  # no lifecycle setting here: the production default
        ("P12M", dt.timedelta(minutes=10)),
        ("PT1H", dt.timedelta(minutes=6)),
        ("PT20S", dt.timedelta(seconds=2)),
        ("PT15S", dt.timedelta(seconds=1.5)),
    ],
)
def test_the_default_last_access_interval_is_at_most_a_tenth_of_the_lifecycles_inactivity(inactivity, interval):
    environ = {} if inactivity is None else {"CUMULO_LIFECYCLE_INACTIVITY": inactivity}
    for service in ("auth", "blob", "sync"):  # every service reads the same config map
        s = PlatformSettings.from_env(service, Env(service, {**BASE, **environ}))
        assert s.last_access_interval == interval


def test_a_set_last_access_interval_wins_over_the_derived_one():
    # Whether it suits the inactivity is the lifecycle's to judge (it refuses at start-up).
    assert settings(CUMULO_LIFECYCLE_INACTIVITY="PT20S", CUMULO_LAST_ACCESS_INTERVAL="PT1S").last_access_interval == dt.timedelta(seconds=1)
    assert settings(CUMULO_LIFECYCLE_INACTIVITY="PT20S", CUMULO_AUTH_LAST_ACCESS_INTERVAL="PT3S").last_access_interval == dt.timedelta(seconds=3)


def test_a_malformed_lifecycle_inactivity_is_a_settings_error_naming_it():
    with pytest.raises(SettingsError, match="CUMULO_LIFECYCLE_INACTIVITY"):
        settings(CUMULO_LIFECYCLE_INACTIVITY="twenty seconds")


def test_env_reads_another_services_settings_from_the_same_environment():
    env = Env("auth", {"CUMULO_LIFECYCLE_INACTIVITY": "PT20S", "CUMULO_AUTH_INACTIVITY": "PT1S"})
    assert env.for_service("lifecycle").raw("INACTIVITY") == "PT20S"
    assert env.raw("INACTIVITY") == "PT1S"


# --- traces ------------------------------------------------------------------------


def test_traces_are_off_unless_a_collector_is_named():
    assert not settings().traces.enabled
    traced = settings(CUMULO_OTLP_ENDPOINT="http://collector:4317", CUMULO_TRACE_SAMPLE_RATIO="0.05", CUMULO_TRACE_EXPORT_DELAY="PT2S").traces
    assert traced.enabled and traced.sample_ratio == 0.05 and traced.export_delay_seconds == 2


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"CUMULO_OTLP_ENDPOINT": "collector:4317"}, "CUMULO_OTLP_ENDPOINT"),
        ({"CUMULO_OTLP_ENDPOINT": "ftp://collector:4317"}, "CUMULO_OTLP_ENDPOINT"),
        ({"CUMULO_OTLP_ENDPOINT": "http://collector"}, "CUMULO_OTLP_ENDPOINT"),
        ({"CUMULO_TRACE_SAMPLE_RATIO": "1.5"}, "CUMULO_TRACE_SAMPLE_RATIO"),
        ({"CUMULO_TRACE_SAMPLE_RATIO": "lots"}, "CUMULO_TRACE_SAMPLE_RATIO"),
        ({"CUMULO_TRACE_EXPORT_DELAY": "PT0S"}, "CUMULO_TRACE_EXPORT_DELAY"),
    ],
)
def test_bad_trace_settings_are_refused_naming_the_variable(environ, named):
    with pytest.raises(SettingsError, match=named):
        settings(**environ)
