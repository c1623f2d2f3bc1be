"""The events the blob service takes in. Its only handler of its own is the account purge of
the lifecycle's deletion saga, through the platform's purge participant (durable consumer
`blob-purge`); the account-state gate (`account.state_changed`) and legal holds
(`account.hold_changed`) are kept by the platform's consumers, which `Foundation.runtime()`
adds."""

from __future__ import annotations

from cumulo_blob.purge import Purge
from cumulo_platform.runtime import Job
from cumulo_platform.service import Foundation


def consumers(base: Foundation, purge: Purge) -> list[Job]:
    return [base.purge_consumer(purge.account)]
