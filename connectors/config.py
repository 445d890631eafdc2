"""The connector's configuration: one TOML file, written by
``vrm-connector init`` and read by every other command.

The client secret is never in the file by default: the file names an
environment variable (``secret_env``) or a file (``secret_file``) that
holds it. ``secret`` inline is accepted only when asked for.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Hosts the connector may reach over plain http (everything else: https).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ConfigError(ValueError):
    """A configuration that cannot work; the message is one line each."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SinkConfig(Strict):
    kind: Literal["sql", "csv", "jsonl", "bottlecrm", "hubspot", "salesforce", "dynamics"]
    # sql: a SQLAlchemy URL; a CRM: its base URL (HubSpot's API, the
    # Salesforce instance, the Dataverse organization); csv and jsonl: a
    # folder.
    url: str | None = None
    # A CRM: the variable holding its access token, and the contacts' field
    # that holds the subject (each CRM's own default when unset).
    token_env: str | None = None
    subject_field: str | None = None
    # Salesforce, Dataverse: instead of a fixed token, OAuth 2.0 client
    # credentials (connectors/sinks/crm_auth.py): the token endpoint, the
    # client's id, the variable holding its secret, and a scope if the
    # endpoint wants one (Entra ID: https://<org>.crm.dynamics.com/.default).
    token_url: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    token_scope: str | None = None
    # hubspot: what becomes of a contact with nothing of the customer's
    # left: deleted for good (gdpr-delete), or archived (restorable by the
    # vendor for 90 days).
    removal: Literal["permanent", "archive"] = "permanent"
    path: Path | None = None
    # sql: the tables, created if missing.
    contacts_table: str = "vrm_contacts"
    events_table: str = "vrm_history_events"


class ListenConfig(Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8787
    # Notices signed longer ago than this are refused (the store retries for
    # a day, signing each attempt afresh).
    max_age_seconds: Annotated[int, Field(gt=0)] = 600


class AuthorizeConfig(Strict):
    # Registered with the store for this vendor; a loopback address lets
    # `authorize` receive the answer itself.
    redirect_uri: str = "http://127.0.0.1:8788/callback"
    scope: str = "profile:read preferences:read history:read"
    purpose: str = "dpv:ServiceProvision"


class Config(Strict):
    store_url: str
    client_id: str
    secret_env: str | None = None
    secret_file: Path | None = None
    secret: str | None = None  # inline only with `init --inline-secret`
    sink: SinkConfig
    # Store field (profile.email, preferences, history) -> sink field.
    # Empty: the sink's default mapping.
    mapping: dict[str, str] = Field(default_factory=dict)
    listen: ListenConfig = Field(default_factory=ListenConfig)
    authorize: AuthorizeConfig = Field(default_factory=AuthorizeConfig)
    # The key of the customers' token store (connectors/tokens.py): a
    # variable or a private file holding 32 bytes, base64url.
    token_key_env: str | None = None
    token_key_file: Path | None = None
    # Feed items asked for per page (the store allows 1 to 1000).
    page_size: Annotated[int, Field(ge=1, le=1000)] = 1000
    # Pages per dlt load: the cursor is saved after each load, so fewer
    # pages mean less read again after a crash, and more commits.
    pages_per_load: Annotated[int, Field(ge=1)] = 20
    # Where the connector keeps its state (notices seen, counts); relative
    # paths are relative to the config file.
    state_dir: Path = Path("vrm-connector-state")

    @field_validator("store_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        loopback = parts.hostname in LOOPBACK_HOSTS
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError("store_url must be https (http only on a loopback host)")
        return value.rstrip("/")

    def client_secret(self) -> str:
        if self.secret_env is not None:
            found = os.environ.get(self.secret_env)
            if not found:
                raise ConfigError(f"the client secret's variable {self.secret_env} is not set")
            return found
        if self.secret_file is not None:
            try:
                return self.secret_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the client secret's file {self.secret_file}: {exc.strerror}"
                ) from None
        if self.secret is not None:
            return self.secret
        raise ConfigError("no client secret: set secret_env or secret_file")


def problems_of(data: dict[str, Any]) -> list[str]:
    """What is wrong with a configuration, one line each."""
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{where}: {message}" if where else message)
        return lines
    return []


def load(path: Path) -> Config:
    """The configuration at ``path``; :class:`ConfigError` naming every
    problem, one line each."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not TOML: {exc}") from None
    problems = problems_of(data)
    if problems:
        raise ConfigError("\n".join(problems))
    config = Config.model_validate(data)
    base = path.parent
    if not config.state_dir.is_absolute():
        config.state_dir = base / config.state_dir
    if config.secret_file is not None and not config.secret_file.is_absolute():
        config.secret_file = base / config.secret_file
    if config.token_key_file is not None and not config.token_key_file.is_absolute():
        config.token_key_file = base / config.token_key_file
    if config.sink.path is not None and not config.sink.path.is_absolute():
        config.sink.path = base / config.sink.path
    return config


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dump(config: Config) -> str:
    """The configuration as TOML (what ``init`` writes)."""
    data = config.model_dump(mode="json", exclude_none=True)
    lines = []
    nested = {}
    for key, value in data.items():
        if isinstance(value, dict):
            nested[key] = value
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for section, values in nested.items():
        lines.append("")
        lines.append(f"[{section}]")
        for key, value in values.items():
            name = key if key.replace("_", "").isalnum() else _toml_value(key)
            lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
