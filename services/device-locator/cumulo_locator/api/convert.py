"""Rows to protobuf messages."""

from __future__ import annotations

from typing import Any

from cumulo.locator.v1 import locator_pb2
from cumulo_platform.grpc_convert import timestamp

# The names the table stores (domain.rules.SOURCES, by the same numbers).
SOURCE_VALUES = {
    "gps": locator_pb2.LOCATION_SOURCE_GPS,
    "network": locator_pb2.LOCATION_SOURCE_NETWORK,
    "wifi": locator_pb2.LOCATION_SOURCE_WIFI,
    "cell": locator_pb2.LOCATION_SOURCE_CELL,
}
KINDS = {
    "locate": locator_pb2.COMMAND_KIND_LOCATE,
    "ring": locator_pb2.COMMAND_KIND_RING,
    "lost_mode": locator_pb2.COMMAND_KIND_LOST_MODE,
    "wipe": locator_pb2.COMMAND_KIND_WIPE,
}
KIND_NAMES = {value: name for name, value in KINDS.items()}
STATES = {
    "queued": locator_pb2.COMMAND_STATE_QUEUED,
    "delivered": locator_pb2.COMMAND_STATE_DELIVERED,
    "succeeded": locator_pb2.COMMAND_STATE_SUCCEEDED,
    "failed": locator_pb2.COMMAND_STATE_FAILED,
    "expired": locator_pb2.COMMAND_STATE_EXPIRED,
}


def location(row: Any) -> locator_pb2.Location:
    return locator_pb2.Location(
        latitude=row.latitude, longitude=row.longitude, accuracy=row.accuracy, altitude=row.altitude, speed=row.speed,
        battery=row.battery, source=SOURCE_VALUES.get(row.source, locator_pb2.LOCATION_SOURCE_UNSPECIFIED),
        measured_at=timestamp(row.measured_at),
    )


def lost_mode(row: Any) -> locator_pb2.LostMode:
    return locator_pb2.LostMode(
        enabled=row.lost_mode, message=row.lost_message, contact_phone=row.lost_phone,
        since=timestamp(row.lost_since), found_at=timestamp(row.found_at),
    )


def device(row: Any) -> locator_pb2.Device:
    last = location(row) if row.measured_at is not None else None  # a device row has a location's columns
    return locator_pb2.Device(
        device_id=row.device_id, account_id=str(row.account_id), name=row.name, model=row.model, platform=row.platform,
        registered_at=timestamp(row.registered_at), last_seen_at=timestamp(row.last_seen_at), battery=row.battery,
        last_location=last, lost_mode=lost_mode(row), wiped_at=timestamp(row.wiped_at),
    )


def command(row: Any) -> locator_pb2.Command:
    return locator_pb2.Command(
        command_id=str(row.command_id), device_id=row.device_id, kind=KINDS[row.kind], state=STATES[row.state],
        ring_seconds=row.ring_seconds,
        lost_mode=locator_pb2.LostMode(enabled=row.lost_enabled, message=row.lost_message, contact_phone=row.lost_phone)
        if row.kind == "lost_mode" else None,
        created_at=timestamp(row.created_at), expires_at=timestamp(row.expires_at), delivered_at=timestamp(row.delivered_at),
        completed_at=timestamp(row.completed_at), detail=row.detail, deliveries=row.deliveries,
    )
