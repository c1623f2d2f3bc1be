"""The three building blocks together, on free ports under one folder: what the test session
and the benchmarks start (make run keeps fixed ports and ./var/ instead)."""

from __future__ import annotations

import dataclasses
import pathlib
import uuid

from cumulo_devstack.servers import EmbeddedNats, EmbeddedPostgres, EmbeddedS3, free_port


@dataclasses.dataclass
class Infra:
    postgres: EmbeddedPostgres
    nats: EmbeddedNats
    s3: EmbeddedS3
    root: pathlib.Path

    @classmethod
    def start(cls, root: pathlib.Path) -> "Infra":
        infra = cls(
            EmbeddedPostgres(root / "postgres"),
            EmbeddedNats(root / "nats", free_port(), root / "nats.log"),
            EmbeddedS3(root / "s3", free_port(), root / "s3.log"),
            root,
        )
        infra.postgres.start()
        try:
            infra.nats.start()
            infra.s3.start()
        except Exception:
            infra.stop()
            raise
        return infra

    def stop(self) -> None:
        self.s3.stop()
        self.nats.stop()
        self.postgres.stop()

    def new_database(self) -> str:
        return self.postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")

    def service_environ(self, **extra: str) -> dict[str, str]:
        """Environment for one service on a fresh database and a free port."""
        return {
            "DATABASE_URL": self.new_database(),
            "NATS_URL": self.nats.url,
            "S3_ENDPOINT": self.s3.endpoint,
            "S3_ACCESS_KEY_ID": self.s3.access_key,
            "S3_SECRET_ACCESS_KEY": self.s3.secret_key,
            "CUMULO_GRPC_PORT": str(free_port()),
            "CUMULO_LOG_LEVEL": "warning",
            "CUMULO_ENVIRONMENT": "development",
            "CUMULO_DRAIN_GRACE_SECONDS": "1",
            **extra,
        }
