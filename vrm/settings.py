"""Typed settings, read from ``VRM_*`` environment variables.

The defaults are the embedded ones: a SQLite file and a file key store under
``./var``. The app reads the :class:`Settings` it was built with from
``app.state`` (tests build their own).
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VRM_", extra="ignore")

    data_dir: Path = Path("var")
    # Empty means "SQLite file under data_dir"; see ``database_url_resolved``.
    database_url: str = ""
    # Empty means "data_dir/keys".
    key_dir: Path | None = None
    # Ids of erased customers, replayed by `vrm backup restore` (vrm/backup).
    # Empty means "data_dir/erasures.journal"; keep it off the data disk.
    erasure_journal: Path | None = None
    # The key `vrm backup` seals backups with (or --key-file): 32 bytes,
    # base64url-encoded, as `vrm backup new-key` prints.
    backup_key: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    issuer: str = "http://127.0.0.1:8000"

    # Request bodies above this size get 413 before they are parsed.
    max_body_bytes: Annotated[int, Field(gt=0)] = 256 * 1024

    session_cookie_name: str = "vrm_session"
    session_ttl_seconds: Annotated[int, Field(gt=0)] = 14 * 24 * 3600
    # None: Secure when the request came over https (behind a proxy, as the
    # proxy says in X-Forwarded-Proto: see trusted_proxies).
    cookie_secure: bool | None = None
    # Addresses or networks of the proxies whose X-Forwarded-For and
    # X-Forwarded-Proto `vrm serve` believes, comma-separated. Empty: none,
    # so a client cannot pick its own address or scheme.
    trusted_proxies: str = ""

    # Argon2id parameters (RFC 9106 section 4, second recommended option by
    # default). Tests lower them; production should not.
    argon2_time_cost: Annotated[int, Field(ge=1)] = 3
    argon2_memory_kib: Annotated[int, Field(ge=8)] = 64 * 1024
    argon2_parallelism: Annotated[int, Field(ge=1)] = 4

    # Login throttling (vrm/accounts/throttle.py): this many failures on one
    # account from one client address (and, separately, the per-address
    # number on any accounts) hold that address off for lockout_seconds,
    # doubling with every further failure up to lockout_max_seconds.
    login_max_failures: Annotated[int, Field(ge=1)] = 5
    login_window_seconds: Annotated[int, Field(ge=1)] = 15 * 60
    login_lockout_seconds: Annotated[int, Field(ge=1)] = 60
    login_lockout_max_seconds: Annotated[int, Field(ge=1)] = 3600
    # A client address gets more room than one account: many people share NATs.
    login_max_failures_per_address: Annotated[int, Field(ge=1)] = 50

    # Who holds a new customer's root key (docs/keys.md, "Customer-held
    # keys"): "customer" wraps it by their password and a recovery key, so
    # the server opens only what a live grant shares while they are away.
    # "server" keeps it in the key store: it remains for operators who
    # choose it, and is how customers from before are held until their
    # next log-in moves them over.
    key_custody: Literal["server", "customer"] = "customer"

    # How long unwrapped data keys stay in process memory. Deleting a customer
    # evicts them at once in this process; other processes drop them within
    # this time.
    key_cache_seconds: Annotated[float, Field(ge=0)] = 60.0
    # What is kept decrypted in memory for records read again and again
    # (vrm/keys/derived.py: a vendor's view of each history event), in MiB,
    # for no longer than the keys above; 0 keeps nothing.
    derived_cache_mib: Annotated[int, Field(ge=0, le=65536)] = 64

    # OAuth: authorization codes live a minute (as in oidc-provider); access
    # tokens ten minutes; a refresh token dies after this long unused, and
    # never outlives its grant.
    code_ttl_seconds: Annotated[int, Field(ge=1, le=600)] = 60
    # The device authorization grant (RFC 8628, `vrm-me login`): how long
    # a device code and its user code wait for the customer, and the
    # shortest interval between two polls of the token endpoint (3.5).
    device_code_ttl_seconds: Annotated[int, Field(ge=10, le=1800)] = 600
    device_poll_interval_seconds: Annotated[int, Field(ge=1, le=60)] = 5
    access_token_ttl_seconds: Annotated[int, Field(ge=1)] = 600
    refresh_idle_seconds: Annotated[int, Field(ge=1)] = 30 * 24 * 3600

    # The audit log (consent/audit, docs/audit.md): each `vrm serve` process
    # looks this often for entries committed since the last checkpoint, and
    # signs a new one if there are (0: never).
    audit_checkpoint_seconds: Annotated[float, Field(ge=0)] = 2.0
    # Witnesses (C2SP tlog-witness) asked to cosign each new checkpoint:
    # each "<url> <verifier key>", e.g. from `vrm audit witness`.
    audit_witnesses: list[str] = []

    # Revocation notices (consent/notices, docs/notices.md): how often the
    # background work ends expired grants and pushes due notices (0: never;
    # run `vrm worker` instead), and how long it waits for a vendor's answer.
    notice_interval_seconds: Annotated[float, Field(ge=0)] = 1.0
    notice_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    # Whether `vrm serve` runs the background work (purge, checkpoints,
    # notices) itself: the embedded default (with --workers N, once, in the
    # supervisor: vrm/serving.py). A deployment with several servers sets
    # it false in them and runs `vrm worker` beside them.
    background_jobs: bool = True

    # Purging (vrm/purge.py; docs/operations.md, "Purging", says why each
    # default): how long each kind of row is kept once it is of no more use.
    # Every purge_interval_seconds in each `vrm serve` process (0: never;
    # run `vrm purge` from cron instead).
    purge_interval_seconds: Annotated[int, Field(ge=0)] = 600
    retain_expired_sessions_seconds: Annotated[int, Field(ge=0)] = 0
    # Spent tokens and codes: a day, so reuse is still caught just after.
    retain_spent_tokens_seconds: Annotated[int, Field(ge=0)] = 24 * 3600
    retain_spent_codes_seconds: Annotated[int, Field(ge=0)] = 24 * 3600
    # Who read what: customers and auditors look back years, not days.
    retain_access_events_seconds: Annotated[int, Field(ge=0)] = 3 * 365 * 24 * 3600
    # Feed deletions and tombstones; a feed cursor older than the last one
    # purged is refused (410): the vendor must resync.
    retain_feed_deletions_seconds: Annotated[int, Field(ge=0)] = 90 * 24 * 3600
    # Deposit records, and so the Idempotency-Key window of POST /v1/history.
    retain_deposits_seconds: Annotated[int, Field(ge=0)] = 7 * 24 * 3600

    @model_validator(mode="after")
    def _check_paths(self) -> Settings:
        if self.database_url and not self.database_url.startswith(("sqlite", "postgresql")):
            raise ValueError("VRM_DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")
        issuer = urlsplit(self.issuer)
        loopback = issuer.hostname in ("127.0.0.1", "localhost", "::1")
        if not issuer.hostname or issuer.query or issuer.fragment:
            raise ValueError("VRM_ISSUER must be a URL such as https://vrm.example.org")
        if issuer.scheme != "https" and not (issuer.scheme == "http" and loopback):
            # OAuth needs TLS (RFC 9700 2.6): plain http only on loopback.
            raise ValueError("VRM_ISSUER must be https (plain http only on loopback)")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        # As uvicorn reads them: anything else it would silently never match.
        for item in _items(value):
            try:
                ip_network(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The trusted proxies as uvicorn takes them (``forwarded_allow_ips``)."""
        return _items(self.trusted_proxies)

    @property
    def key_dir_resolved(self) -> Path:
        return self.key_dir if self.key_dir is not None else self.data_dir / "keys"

    @property
    def erasure_journal_resolved(self) -> Path:
        if self.erasure_journal is not None:
            return self.erasure_journal
        return self.data_dir / "erasures.journal"

    @property
    def database_url_resolved(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'vrm.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url_resolved.startswith("sqlite")


def _items(listed: str) -> list[str]:
    return [item.strip() for item in listed.split(",") if item.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
