"""The blob service's own refusals."""

from __future__ import annotations

from cumulo_platform.errors import FailedPrecondition


class LegalHold(FailedPrecondition):
    """The account is under a legal hold (§3.3.1): nothing of it is deleted until the release."""

    default_reason = "LEGAL_HOLD"
