"""The lifecycle's settings: short periods bring a short safety margin and short last-access
intervals, and combinations that would break a promise to users are refused, naming the
variables."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest
import yaml

from cumulo_lifecycle.config import LifecycleSettings, iso_duration
from cumulo_platform.durations import IsoDuration
from cumulo_platform.registry import SERVICES
from cumulo_platform.settings import Env, PlatformSettings, SettingsError

BASE = {"DATABASE_URL": "postgresql://localhost/cumulo"}
README = {"CUMULO_LIFECYCLE_INACTIVITY": "PT15S", "CUMULO_LIFECYCLE_GRACE": "PT45S", "CUMULO_LIFECYCLE_SWEEP_EVERY": "PT1S"}


def lifecycle(**environ: str) -> LifecycleSettings:
    return LifecycleSettings.from_env({**BASE, **environ})


def test_the_production_defaults_keep_a_one_hour_margin_and_ten_minute_intervals():
    s = lifecycle()
    assert s.calendar.safety_margin == dt.timedelta(hours=1)
    assert s.platform.last_access_interval == dt.timedelta(minutes=10)


@pytest.mark.parametrize(
    ("grace", "margin"),
    [
        ("P30D", dt.timedelta(hours=1)),
        ("P1D", dt.timedelta(hours=1)),
        ("PT5H", dt.timedelta(minutes=30)),
        ("P1M", dt.timedelta(hours=1)),
    ],
)
def test_the_default_margin_is_a_tenth_of_the_grace_at_most_an_hour(grace, margin):
    assert lifecycle(CUMULO_LIFECYCLE_GRACE=grace).calendar.safety_margin == margin


@pytest.mark.parametrize(
    ("inactivity", "grace", "margin"),
    [
        # Two last-access intervals (a tenth of the inactivity each) when a tenth of the grace is shorter.
        ("PT15S", "PT20S", dt.timedelta(seconds=3)),
        ("PT1M", "PT2M", dt.timedelta(seconds=12)),
        ("P12M", "PT2H", dt.timedelta(minutes=20)),
        # ... but never over a quarter of the grace.
        ("P12M", "PT30S", dt.timedelta(seconds=7.5)),
        ("PT1M", "PT20S", dt.timedelta(seconds=5)),
        # A tenth of the grace when that is longer.
        ("PT15S", "PT45S", dt.timedelta(seconds=4.5)),
    ],
)
def test_the_default_margin_outlasts_two_last_access_intervals_within_a_quarter_of_the_grace(inactivity, grace, margin):
    s = lifecycle(CUMULO_LIFECYCLE_INACTIVITY=inactivity, CUMULO_LIFECYCLE_GRACE=grace)
    assert s.calendar.safety_margin == margin


def test_the_default_margin_follows_the_longest_interval_set():
    s = lifecycle(CUMULO_LIFECYCLE_GRACE="PT2M", CUMULO_LIFECYCLE_INACTIVITY="PT1M", CUMULO_SYNC_LAST_ACCESS_INTERVAL="PT5S")
    assert s.calendar.safety_margin == dt.timedelta(seconds=12)
    s = lifecycle(CUMULO_LIFECYCLE_GRACE="P30D", CUMULO_LAST_ACCESS_INTERVAL="PT45M")
    assert s.calendar.safety_margin == dt.timedelta(minutes=90)


def test_the_readme_periods_give_a_margin_and_intervals_of_seconds():
    s = lifecycle(**README)
    assert s.calendar.safety_margin == dt.timedelta(seconds=4.5)
    for service in ("auth", "blob", "sync", "locator", "moderation", "lifecycle"):
        platform = PlatformSettings.from_env(service, Env(service, {**BASE, **README}))
        assert platform.last_access_interval == dt.timedelta(seconds=1.5)


def test_a_set_margin_is_kept_when_it_suits_the_grace():
    assert lifecycle(CUMULO_LIFECYCLE_GRACE="PT4S", CUMULO_LIFECYCLE_SAFETY_MARGIN="PT0S").calendar.safety_margin == dt.timedelta(0)
    assert lifecycle(CUMULO_LIFECYCLE_SAFETY_MARGIN="P1D").calendar.safety_margin == dt.timedelta(days=1)


def test_a_margin_longer_than_a_quarter_of_the_grace_is_refused_naming_both():
    with pytest.raises(SettingsError) as refused:
        lifecycle(CUMULO_LIFECYCLE_GRACE="PT2M", CUMULO_LIFECYCLE_SAFETY_MARGIN="PT1H")
    message = str(refused.value)
    assert "CUMULO_LIFECYCLE_SAFETY_MARGIN=PT1H" in message and "CUMULO_LIFECYCLE_GRACE=PT2M" in message
    assert "at most PT30S" in message and "unset" in message


def test_an_inactivity_shorter_than_four_intervals_is_refused_naming_both():
    with pytest.raises(SettingsError) as refused:
        lifecycle(CUMULO_LIFECYCLE_INACTIVITY="PT20S", CUMULO_LAST_ACCESS_INTERVAL="PT10M")
    message = str(refused.value)
    assert "CUMULO_LIFECYCLE_INACTIVITY=PT20S" in message and "CUMULO_LAST_ACCESS_INTERVAL=PT10M" in message
    assert "at most PT5S" in message


@pytest.mark.parametrize(
    ("inactivity", "most"),
    [("P12M", "P84D"), ("P1D", "PT6H"), ("PT2H", "PT30M"), ("PT90M", "PT22M30S"), ("PT6S", "PT1.5S"), ("PT1S", "PT0.25S")],
)
def test_the_suggested_interval_is_an_iso_duration_a_person_can_paste(inactivity, most):
    with pytest.raises(SettingsError) as refused:
        lifecycle(CUMULO_LIFECYCLE_INACTIVITY=inactivity, CUMULO_LAST_ACCESS_INTERVAL="P400D")
    assert f"at most {most}," in str(refused.value)
    lifecycle(CUMULO_LIFECYCLE_INACTIVITY=inactivity, CUMULO_LAST_ACCESS_INTERVAL=most)  # pasted back: accepted


@pytest.mark.parametrize(
    ("length", "text"),
    [
        (dt.timedelta(0), "PT0S"),
        (dt.timedelta(days=84), "P84D"),
        (dt.timedelta(hours=2), "PT2H"),
        (dt.timedelta(seconds=1.5), "PT1.5S"),
        (dt.timedelta(days=1, hours=1, minutes=30, microseconds=5), "P1DT1H30M0.000005S"),
    ],
)
def test_iso_durations_read_back_as_they_were(length, text):
    assert iso_duration(length) == text
    assert IsoDuration.parse(text).as_timedelta() == length


def test_one_services_own_interval_is_judged_too():
    with pytest.raises(SettingsError, match="CUMULO_BLOB_LAST_ACCESS_INTERVAL=PT10S"):
        lifecycle(CUMULO_LIFECYCLE_INACTIVITY="PT20S", CUMULO_BLOB_LAST_ACCESS_INTERVAL="PT10S")


def test_intervals_that_suit_the_inactivity_are_accepted():
    lifecycle(CUMULO_LIFECYCLE_INACTIVITY="PT20S", CUMULO_LAST_ACCESS_INTERVAL="PT5S")
    lifecycle(CUMULO_LIFECYCLE_INACTIVITY="PT3S", CUMULO_LAST_ACCESS_INTERVAL="PT0.5S")
    lifecycle(CUMULO_LIFECYCLE_INACTIVITY="P12M", CUMULO_LAST_ACCESS_INTERVAL="P1D")


def test_the_time_zone_is_the_lifecycles_own_then_the_platforms():
    assert lifecycle().calendar.time_zone.key == "Asia/Shanghai"
    assert lifecycle(CUMULO_TIME_ZONE="Europe/Berlin").calendar.time_zone.key == "Europe/Berlin"
    both = lifecycle(CUMULO_TIME_ZONE="Europe/Berlin", CUMULO_LIFECYCLE_TIME_ZONE="America/New_York")
    assert both.calendar.time_zone.key == "America/New_York"


@pytest.mark.parametrize("variable", ["CUMULO_TIME_ZONE", "CUMULO_LIFECYCLE_TIME_ZONE"])
def test_an_unknown_time_zone_is_refused_naming_its_variable(variable):
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        lifecycle(**{variable: "Mars/Olympus_Mons"})


# --- Kubernetes ---------------------------------------------------------------------------------

K8S = pathlib.Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "base"
SHARED = ("LIFECYCLE_INACTIVITY", "LIFECYCLE_GRACE", "LAST_ACCESS_INTERVAL", "SAFETY_MARGIN")


def test_kubernetes_gives_every_service_the_lifecycles_periods():
    """The periods are in the config map every service reads, and no manifest sets them (or a
    last-access interval) for one service only: every pod derives the same interval."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (shared,) = [m for m in kustomization["configMapGenerator"] if m["name"] == "cumulo-config"]
    environ = dict(literal.split("=", 1) for literal in shared["literals"])
    assert {"CUMULO_LIFECYCLE_INACTIVITY", "CUMULO_LIFECYCLE_GRACE"} <= environ.keys()
    settings = lifecycle(**environ)
    assert settings.calendar.safety_margin == dt.timedelta(hours=1)
    for service, registered in SERVICES.items():
        manifest = (K8S / f"{pathlib.PurePath(registered.folder).name}.yaml").read_text()
        assert "name: cumulo-config" in manifest, service
        assert not [name for name in SHARED if name in manifest], service
        platform = PlatformSettings.from_env(service, Env(service, {**BASE, **environ}))
        assert platform.last_access_interval == settings.platform.last_access_interval == dt.timedelta(minutes=10)
