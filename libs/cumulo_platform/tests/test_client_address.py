"""The client address every service throttles by (cumulo_platform.interceptors): the entry of
x-forwarded-for that the outermost trusted proxy wrote, and an IPv6 address counted by its /64.
Pure functions, no server."""

from __future__ import annotations

import pytest

from cumulo_platform.interceptors import CallInfo, _client_address, client_network
from cumulo_platform.settings import Env, PlatformSettings, SettingsError

BASE = {"DATABASE_URL": "postgresql://localhost/cumulo"}


@pytest.mark.parametrize(
    ("forwarded", "hops", "expected"),
    [
        # Envoy alone (the default): the entry it appended, whatever the client claimed before it.
        ("198.51.100.7", 1, "198.51.100.7"),
        ("203.0.113.250, 198.51.100.7", 1, "198.51.100.7"),
        # A TLS-terminating load balancer, then Envoy: Envoy's entry is the balancer's own address.
        ("192.0.2.10, 10.0.0.5", 2, "192.0.2.10"),
        ("203.0.113.250, 192.0.2.10, 10.0.0.5", 2, "192.0.2.10"),
        # Fewer entries than hops (a request that came past the balancer): the leftmost, which
        # Envoy wrote.
        ("198.51.100.7", 2, "198.51.100.7"),
        # Spaces and empty entries are no addresses.
        (" 203.0.113.250 ,, 198.51.100.7 ", 1, "198.51.100.7"),
    ],
)
def test_the_entry_the_outermost_trusted_proxy_wrote_is_the_client(forwarded, hops, expected):
    assert _client_address({"x-forwarded-for": forwarded}, "ipv4:10.0.0.9:40000", hops) == expected


def test_behind_a_load_balancer_clients_are_told_apart_not_all_the_balancer():
    balancer = "10.0.0.5"
    seen_with_one_hop = {_client_address({"x-forwarded-for": f"{client}, {balancer}"}, "ipv4:10.0.0.9:1", 1) for client in ("192.0.2.1", "192.0.2.2")}
    seen_with_two_hops = {_client_address({"x-forwarded-for": f"{client}, {balancer}"}, "ipv4:10.0.0.9:1", 2) for client in ("192.0.2.1", "192.0.2.2")}
    assert seen_with_one_hop == {balancer}
    assert seen_with_two_hops == {"192.0.2.1", "192.0.2.2"}


@pytest.mark.parametrize(
    ("metadata", "peer", "hops", "expected"),
    [
        ({}, "ipv4:192.0.2.4:5000", 1, "192.0.2.4"),
        ({}, "ipv6:[2001:db8::7]:5000", 1, "2001:db8::7"),
        ({"x-forwarded-for": ""}, "ipv4:192.0.2.4:5000", 1, "192.0.2.4"),
        # No trusted proxy: the header, whoever wrote it, is ignored.
        ({"x-forwarded-for": "203.0.113.250"}, "ipv4:192.0.2.4:5000", 0, "192.0.2.4"),
        ({}, "unix:/run/cumulo.sock", 1, "unix:/run/cumulo.sock"),
    ],
)
def test_without_a_usable_header_the_transport_peer_is_the_client(metadata, peer, hops, expected):
    assert _client_address(metadata, peer, hops) == expected


def test_a_huge_forged_entry_is_cut_short():
    forged = "x" * 5000
    assert len(_client_address({"x-forwarded-for": forged}, "ipv4:10.0.0.9:1")) <= 64


def test_the_callers_of_two_arguments_get_envoys_entry():
    assert _client_address({"x-forwarded-for": "198.51.100.7, 10.0.0.1"}, "ipv4:127.0.0.1:5000") == "10.0.0.1"


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("192.0.2.77", "192.0.2.77"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::FFFF", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.77", "192.0.2.77"),  # IPv4-mapped: the IPv4 client
        ("192.0.2.77:443", "192.0.2.77"),  # a balancer that writes the port
        ("[2001:db8:1:2::1]:443", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("unix:/run/cumulo.sock", "unix:/run/cumulo.sock"),
        ("not an address", "not an address"),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64_network(address, network):
    assert client_network(address) == network


def test_one_ipv6_subscriber_cannot_dodge_a_limit_with_fresh_addresses():
    many = {client_network(f"2001:db8:aa:bb:{n:x}::{n:x}") for n in range(1, 500)}
    assert many == {"2001:db8:aa:bb::/64"}
    assert client_network("2001:db8:aa:bc::1") != client_network("2001:db8:aa:bb::1")


def test_a_call_tells_its_network_beside_its_address():
    call = CallInfo(method="/m", request_id="r", client_id="c", client_address="2001:db8:1:2::9", principal=None)
    assert (call.client_address, call.client_network) == ("2001:db8:1:2::9", "2001:db8:1:2::/64")


def platform(**environ: str) -> PlatformSettings:
    return PlatformSettings.from_env("auth", Env("auth", {**BASE, **environ}))


def test_trusted_proxy_hops_default_to_envoy_alone_and_are_set_globally_or_per_service():
    assert platform().trusted_proxy_hops == 1
    assert platform(CUMULO_TRUSTED_PROXY_HOPS="2").trusted_proxy_hops == 2
    assert platform(CUMULO_TRUSTED_PROXY_HOPS="2", CUMULO_AUTH_TRUSTED_PROXY_HOPS="0").trusted_proxy_hops == 0


@pytest.mark.parametrize("variable", ["CUMULO_GATEWAY_TRUSTED_HOPS", "CUMULO_TRUSTED_HOPS"])
def test_unset_the_hops_follow_the_proxies_the_gateway_is_told_stand_in_front_of_it(variable):
    """A balancer in front of Envoy, told to the gateway, is one more hop for the services."""
    assert platform(**{variable: "1"}).trusted_proxy_hops == 2
    assert platform(**{variable: "1"}, CUMULO_TRUSTED_PROXY_HOPS="3").trusted_proxy_hops == 3  # said outright


@pytest.mark.parametrize("value", ["-1", "11", "two"])
def test_impossible_trusted_proxy_hops_are_refused_naming_the_variable(value):
    with pytest.raises(SettingsError, match="TRUSTED_PROXY_HOPS"):
        platform(CUMULO_TRUSTED_PROXY_HOPS=value)
