"""The auth service's settings: the platform's, plus its own (CUMULO_AUTH_*)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Mapping

from cumulo_auth import terms
from cumulo_platform import passwords, secrets
from cumulo_platform.settings import Env, PlatformSettings, SettingsError

SERVICE = "auth"
# Client apps registered on a development start-up: the CLI and the web console.
DEVELOPMENT_CLIENTS = {"cumulo-cli": "cumulo command line", "cumulo-web": "cumulo web console"}


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    platform: PlatformSettings
    access_token_ttl: dt.timedelta
    session_ttl: dt.timedelta
    terms_version: str
    terms_text: str  # the shipped text of terms_version (cumulo_auth/terms/)
    time_zone: zoneinfo.ZoneInfo
    register_development_clients: bool
    # Password-guess throttling (cumulo_auth.throttling): failures allowed before delays start
    # (then base delay, doubling, up to the max delay), and the quiet time that forgets them.
    # Per (account, client address): a stranger's guesses block the stranger's address for
    # that account, not the owner elsewhere. Per account, much higher: a ceiling on guessing
    # spread over many addresses. Per client address, across accounts: password spraying.
    # Per session: a signed-in session confirming its password (ConfirmPassword,
    # ChangePassword, CancelAccount), whatever strangers do at the login.
    throttle_free_failures_per_account_address: int
    throttle_free_failures_per_account: int
    throttle_free_failures_per_address: int
    throttle_free_failures_per_session: int
    throttle_base_delay: dt.timedelta
    throttle_max_delay: dt.timedelta
    throttle_forget_after: dt.timedelta
    # The one allowance per client address of the anonymous calls that check a password:
    # CheckNewPassword, Login and Register spend from it what each costs
    # (cumulo_auth.domain.password_work.PasswordWork; a registration counts as 4 checks). Kept in
    # memory, per replica.
    password_checks_per_address: int
    password_check_window: dt.timedelta
    # The Argon2id pool (cumulo_platform.passwords): its workers (each hash holds 64 MiB while
    # it runs) and how many verifies (logins) and new hashes (registrations, new passwords)
    # may wait for one before more are refused at once (RESOURCE_EXHAUSTED,
    # PASSWORD_HASHING_BUSY). New hashes never take the last worker.
    password_hash_workers: int
    password_verify_queue: int
    password_new_hash_queue: int
    # The key of the keyed hashes of logins (deleted accounts' logins, failed logins of unknown
    # ones): CUMULO_SECRETS_DIR/auth/login-hash.key (cumulo_platform.secrets).
    login_key: bytes = dataclasses.field(repr=False)
    # The key-encryption key of the token-signing keys: CUMULO_SECRETS_DIR/auth/signing-kek.key.
    signing_kek: bytes = dataclasses.field(repr=False)
    # How long a new signing key is announced before it signs (every verifier learns it first).
    signing_key_announce: dt.timedelta = dt.timedelta(minutes=2)
    # Contact verification (cumulo_auth.contacts): how long a code is good for, how many wrong
    # guesses void it, how many codes a contact gets an hour; and how recently the password
    # must have been entered to change a contact (a stolen session must not redirect notices).
    contact_code_ttl: dt.timedelta = dt.timedelta(minutes=10)
    contact_code_attempts: int = 5
    contact_codes_per_hour: int = 5
    contact_change_password_window: dt.timedelta = dt.timedelta(minutes=10)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        env = Env(SERVICE, environ)
        platform = PlatformSettings.from_env(SERVICE, env)
        time_zone = env.time_zone()
        terms_version = env.get("TERMS_VERSION", "2026-11")
        settings = cls(
            platform=platform,
            access_token_ttl=env.interval("ACCESS_TOKEN_TTL", "PT15M"),
            session_ttl=env.interval("SESSION_TTL", "P90D"),
            terms_version=terms_version,
            terms_text=terms.load(terms_version),
            time_zone=time_zone,
            register_development_clients=env.flag("REGISTER_DEVELOPMENT_CLIENTS", platform.development),
            throttle_free_failures_per_account_address=env.get("THROTTLE_FREE_FAILURES_PER_ACCOUNT_ADDRESS", 5),
            throttle_free_failures_per_account=env.get("THROTTLE_FREE_FAILURES_PER_ACCOUNT", 100),
            throttle_free_failures_per_address=env.get("THROTTLE_FREE_FAILURES_PER_ADDRESS", 20),
            throttle_free_failures_per_session=env.get("THROTTLE_FREE_FAILURES_PER_SESSION", 5),
            throttle_base_delay=env.interval("THROTTLE_BASE_DELAY", "PT1S"),
            throttle_max_delay=env.interval("THROTTLE_MAX_DELAY", "PT15M"),
            throttle_forget_after=env.interval("THROTTLE_FORGET_AFTER", "PT1H"),
            password_checks_per_address=env.get("PASSWORD_CHECKS_PER_ADDRESS", 60),
            password_check_window=env.interval("PASSWORD_CHECK_WINDOW", "PT1M"),
            password_hash_workers=env.get("PASSWORD_HASH_WORKERS", passwords.DEFAULT_WORKERS),
            password_verify_queue=env.get("PASSWORD_VERIFY_QUEUE", passwords.DEFAULT_VERIFY_QUEUE),
            password_new_hash_queue=env.get("PASSWORD_NEW_HASH_QUEUE", passwords.DEFAULT_NEW_HASH_QUEUE),
            login_key=b"",  # read last, once the other settings are known good
            signing_kek=b"",
            signing_key_announce=env.interval("SIGNING_KEY_ANNOUNCE", "PT2M"),
            contact_code_ttl=env.interval("CONTACT_CODE_TTL", "PT10M"),
            contact_code_attempts=env.get("CONTACT_CODE_ATTEMPTS", 5),
            contact_codes_per_hour=env.get("CONTACT_CODES_PER_HOUR", 5),
            contact_change_password_window=env.interval("CONTACT_CHANGE_PASSWORD_WINDOW", "PT10M"),
        )
        if settings.access_token_ttl > dt.timedelta(hours=1):
            raise SettingsError("CUMULO_AUTH_ACCESS_TOKEN_TTL must be at most an hour (tokens are verified offline)")
        if settings.password_checks_per_address < 1:
            raise SettingsError("CUMULO_AUTH_PASSWORD_CHECKS_PER_ADDRESS must be at least 1")
        if settings.password_check_window <= dt.timedelta(0):
            raise SettingsError("CUMULO_AUTH_PASSWORD_CHECK_WINDOW must be longer than zero")
        if settings.signing_key_announce < dt.timedelta(minutes=1):
            # The services' key caches look again every minute: a shorter announcement could
            # have a new key sign before some of them know it.
            raise SettingsError("CUMULO_AUTH_SIGNING_KEY_ANNOUNCE must be at least PT1M")
        settings._validate_throttles()
        return dataclasses.replace(settings, login_key=secrets.load_key(env, "login-hash"), signing_kek=secrets.load_key(env, "signing-kek"))

    def _validate_throttles(self) -> None:
        for name, value in (
            ("THROTTLE_FREE_FAILURES_PER_ACCOUNT_ADDRESS", self.throttle_free_failures_per_account_address),
            ("THROTTLE_FREE_FAILURES_PER_ADDRESS", self.throttle_free_failures_per_address),
            ("THROTTLE_FREE_FAILURES_PER_SESSION", self.throttle_free_failures_per_session),
            ("PASSWORD_HASH_WORKERS", self.password_hash_workers),
            ("CONTACT_CODE_ATTEMPTS", self.contact_code_attempts),
            ("CONTACT_CODES_PER_HOUR", self.contact_codes_per_hour),
        ):
            if value < 1:
                raise SettingsError(f"CUMULO_AUTH_{name} must be at least 1")
        if self.throttle_free_failures_per_account < self.throttle_free_failures_per_account_address:
            # A ceiling as low as one address's share would let a stranger lock the owner out
            # again from a single address: the very thing the per-address split prevents.
            raise SettingsError(
                "CUMULO_AUTH_THROTTLE_FREE_FAILURES_PER_ACCOUNT must be at least "
                "CUMULO_AUTH_THROTTLE_FREE_FAILURES_PER_ACCOUNT_ADDRESS (it is the ceiling over all addresses)"
            )
        for name, value in (
            ("PASSWORD_VERIFY_QUEUE", self.password_verify_queue),
            ("PASSWORD_NEW_HASH_QUEUE", self.password_new_hash_queue),
        ):
            if value < 0:
                raise SettingsError(f"CUMULO_AUTH_{name} must not be negative")
        if not dt.timedelta(0) < self.throttle_base_delay <= self.throttle_max_delay:
            raise SettingsError("CUMULO_AUTH_THROTTLE_BASE_DELAY must be positive and at most CUMULO_AUTH_THROTTLE_MAX_DELAY")
