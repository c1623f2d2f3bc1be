"""`python -m cumulo_moderation` serves; `python -m cumulo_moderation migrate` only migrates;
`python -m cumulo_moderation rotate-evidence-key` makes a new key sign evidence manifests from
now on (the older keys keep verifying what they signed)."""

from __future__ import annotations

import argparse
import sys

from cumulo_moderation import bootstrap
from cumulo_moderation.adapters.tables import SCHEMA
from cumulo_moderation.config import SERVICE, ModerationSettings
from cumulo_moderation.signing_keys import SigningKeys
from cumulo_platform.clock import SystemClock
from cumulo_platform.db import Database, create_engine
from cumulo_platform.service import Command, service_main


async def _rotate_evidence_key(settings: ModerationSettings, args: argparse.Namespace) -> None:
    db = Database(create_engine(settings.platform.database_url, pool_size=1), schema=SCHEMA, producer=SERVICE, clock=SystemClock())
    try:
        key = await SigningKeys(db, db.clock, settings.evidence_kek).rotate()
    finally:
        await db.dispose()
    print(f"evidence manifests are signed by key {key.key_id} from now on (generation {key.generation}, public key sha256 {key.fingerprint})")


def main(argv: list[str] | None = None) -> int:
    return service_main(
        prog="cumulo_moderation",
        description="cumulo's moderation: complaints, review, takedown, legal hold",
        load_settings=ModerationSettings.from_env,
        platform_of=lambda s: s.platform,
        build=bootstrap.build,
        migrate=bootstrap.migrate,
        commands={
            "rotate-evidence-key": Command("sign evidence manifests with a new key from now on", lambda parser: None, _rotate_evidence_key),
        },
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
