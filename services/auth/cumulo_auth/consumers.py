"""The events auth acts on. Its only one is the lifecycle's `purge.requested`, taken through
the platform's purge participant (durable consumer `auth-purge`), which marks the account
deleted for every replica and reports `purge.completed` once `AccountPurge` has run."""

from __future__ import annotations

from cumulo_auth.purge import AccountPurge
from cumulo_platform.runtime import Job
from cumulo_platform.service import Foundation


def consumers(base: Foundation, purge: AccountPurge) -> list[Job]:
    return [base.purge_consumer(purge.purge_account)]
