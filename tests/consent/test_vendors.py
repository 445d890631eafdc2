"""The vendor registry: registration checks, secrets kept as keyed hashes,
disabling, initial access tokens, and the operator's ``vrm vendors`` command.

Every test runs on SQLite and PostgreSQL; the CLI tests run the installed
``vrm`` script against the same data dir and database as the test's app.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey, OctKey, OKPKey
from sqlmodel import Session, select

from consent.vendors import service
from consent.vendors.errors import InvalidClientMetadata, InvalidRedirectURI
from consent.vendors.models import InitialAccessToken, Vendor
from tests.kit import Clock, Ran, vrm, vrm_script
from vrm.crypto.keystore import FileKeyStore
from vrm.errors import Conflict, NotFound, ValidationFailed
from vrm.keys.service import Vault
from vrm.settings import Settings

CALLBACK = "https://acme.example/callback"
CLIENT_ID = re.compile(r"^vnd_[A-Za-z0-9_-]{22}$")
SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")
EC_KEY = ECKey.generate_key("P-256")
PUBLIC_JWK = EC_KEY.as_dict(private=False)
PRIVATE_JWK = EC_KEY.as_dict(private=True)
OKP_PUBLIC_JWK = OKPKey.generate_key("Ed25519").as_dict(private=False)
OCT_JWK = OctKey.generate_key(256).as_dict()
ALL_GRANTS = ["authorization_code", "refresh_token", "client_credentials"]
METHODS = "client_secret_basic, client_secret_post, private_key_jwt"
GRANTS = "authorization_code, refresh_token, client_credentials"
HTTPS_ONLY = "must use https (http only on a loopback host)"


@pytest.fixture
def vault(app: FastAPI) -> Vault:
    return app.state.vault  # type: ignore[no-any-return]


@pytest.fixture
def session(app: FastAPI) -> Iterator[Session]:
    with Session(app.state.engine) as s:
        yield s


def _register(session: Session, vault: Vault, **overrides: Any) -> tuple[Vendor, str | None]:
    kwargs: dict[str, Any] = {"name": "Acme", "redirect_uris": [CALLBACK]} | overrides
    return service.register(session, vault, **kwargs)


def _stored(app: FastAPI) -> list[Vendor]:
    """The vendor rows as a fresh session reads them from the database
    (but the store's own client, vrm-me, which start-up registers)."""
    with Session(app.state.engine) as fresh:
        return list(fresh.exec(select(Vendor).where(Vendor.id != "vrm-me")).all())


# -- registration ----------------------------------------------------------


def test_register_stores_the_cleaned_metadata_and_returns_a_secret_once(
    app: FastAPI, session: Session, vault: Vault
) -> None:
    before = datetime.now(UTC)
    vendor, secret = _register(
        session,
        vault,
        name="  Acme Coffee  ",
        redirect_uris=[
            CALLBACK,
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
            CALLBACK,
        ],
        logo_uri="https://acme.example/logo.png",
        policy_uri="https://acme.example/privacy#data",
        contacts=[" ops@acme.example ", "dpo@acme.example"],
        notify_uri="https://acme.example/hooks/consent",
        token_endpoint_auth_method="client_secret_post",
        grant_types=["authorization_code", "refresh_token", "authorization_code"],
    )

    assert CLIENT_ID.match(vendor.id)
    assert secret is not None
    assert SECRET.match(secret)
    [stored] = _stored(app)
    assert before <= stored.created_at <= datetime.now(UTC)
    assert stored.model_dump(exclude={"created_at", "secret_hash"}) == {
        "id": vendor.id,
        "name": "Acme Coffee",
        "redirect_uris": [
            CALLBACK,
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
        ],
        "logo_uri": "https://acme.example/logo.png",
        "policy_uri": "https://acme.example/privacy#data",
        "notify_uri": "https://acme.example/hooks/consent",
        "contacts": ["ops@acme.example", "dpo@acme.example"],
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code", "refresh_token"],
        "jwks": None,
        "registered_by": "operator",
        "role": "vendor",
        "registration_token_hash": None,
        "disabled_at": None,
    }


def test_registering_the_same_metadata_twice_gives_distinct_ids_and_secrets(
    app: FastAPI, session: Session, vault: Vault
) -> None:
    first, first_secret = _register(session, vault)
    second, second_secret = _register(session, vault)

    assert first.id != second.id
    assert first_secret != second_secret
    assert sorted(v.id for v in _stored(app)) == sorted([first.id, second.id])


def test_client_secret_is_stored_only_as_its_keyed_hash(
    app: FastAPI, settings: Settings, session: Session, vault: Vault
) -> None:
    vendor, secret = _register(session, vault)
    assert secret is not None

    # Read the raw row, below the model, so nothing is filtered out.
    with app.state.engine.connect() as conn:
        table = Vendor.__table__  # type: ignore[attr-defined]
        [row] = conn.execute(table.select().where(table.c.id == vendor.id)).mappings().all()
    for column, value in row.items():
        text = value.hex() if isinstance(value, bytes) else json.dumps(value, default=str)
        assert secret not in text, column
        if isinstance(value, bytes):
            assert secret.encode() not in value, column
    key = FileKeyStore(settings.key_dir_resolved).server_key("token-hash")
    assert row["secret_hash"] == hmac.new(key, secret.encode(), hashlib.sha256).digest()
    assert row["secret_hash"] != hashlib.sha256(secret.encode()).digest()


def test_private_key_jwt_vendor_gets_no_secret_and_keeps_its_public_keys(
    app: FastAPI, session: Session, vault: Vault
) -> None:
    jwks = {"keys": [PUBLIC_JWK, OKP_PUBLIC_JWK]}
    vendor, secret = _register(
        session, vault, token_endpoint_auth_method="private_key_jwt", jwks=jwks
    )

    assert secret is None
    [stored] = _stored(app)
    assert (stored.id, stored.secret_hash, stored.jwks) == (vendor.id, None, jwks)
    assert stored.token_endpoint_auth_method == "private_key_jwt"
    assert service.check_secret(vault, stored, "") is False


def test_dynamic_registration_is_recorded_as_such(
    app: FastAPI, session: Session, vault: Vault
) -> None:
    _register(session, vault, registered_by="dynamic")

    assert [v.registered_by for v in _stored(app)] == ["dynamic"]


def _jwt(jwks: Any) -> dict[str, Any]:
    return {"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}


INVALID_METADATA = [
    ("empty name", {"name": ""}, "name must not be empty"),
    ("blank name", {"name": "   "}, "name must not be empty"),
    ("long name", {"name": "x" * 201}, "name is longer than 200 characters"),
    ("newline in name", {"name": "Acme\nBank"}, "name must not contain control characters"),
    ("bidi override", {"name": "Acme\u202ekcab"}, "name must not contain control characters"),
    ("logo over http", {"logo_uri": "http://acme.example/l.png"}, f"logo_uri {HTTPS_ONLY}"),
    ("relative policy", {"policy_uri": "/privacy"}, "policy_uri must be an absolute URI"),
    ("notify over http", {"notify_uri": "http://acme.example/hook"}, f"notify_uri {HTTPS_ONLY}"),
    (
        "contact not an email",
        {"contacts": ["ops@acme.example", "call us"]},
        "contacts[1] must be an email address",
    ),
    ("too many contacts", {"contacts": ["a@acme.example"] * 11}, "at most 10 contacts are allowed"),
    (
        "public client",
        {"token_endpoint_auth_method": "none"},
        f"token_endpoint_auth_method must be one of {METHODS}",
    ),
    (
        "client_secret_jwt",
        {"token_endpoint_auth_method": "client_secret_jwt"},
        f"token_endpoint_auth_method must be one of {METHODS}",
    ),
    ("password grant", {"grant_types": ["password"]}, f"grant_types[0] must be one of {GRANTS}"),
    (
        "implicit grant",
        {"grant_types": ["authorization_code", "implicit"]},
        f"grant_types[1] must be one of {GRANTS}",
    ),
    ("no grant types", {"grant_types": []}, "at least one grant_type is required"),
    (
        "jwks with a secret",
        {"jwks": {"keys": [PUBLIC_JWK]}},
        "jwks is only used with private_key_jwt",
    ),
    (
        "private_key_jwt without jwks",
        {"token_endpoint_auth_method": "private_key_jwt"},
        "private_key_jwt needs jwks, the vendor's public keys",
    ),
    ("private key", _jwt({"keys": [PRIVATE_JWK]}), "jwks must hold public keys only"),
    (
        "a private key among public ones",
        _jwt({"keys": [OKP_PUBLIC_JWK, PRIVATE_JWK]}),
        "jwks must hold public keys only",
    ),
    ("symmetric key", _jwt({"keys": [OCT_JWK]}), "jwks must hold public keys only"),
    ("empty set", _jwt({"keys": []}), "jwks must be a JWK Set with a non-empty keys list"),
    ("a bare key", _jwt(PUBLIC_JWK), "jwks must be a JWK Set with a non-empty keys list"),
    (
        "malformed key",
        _jwt({"keys": [PUBLIC_JWK | {"x": "!!"}]}),
        "jwks holds a key that cannot be read",
    ),
    (
        "point off the curve",
        _jwt({"keys": [PUBLIC_JWK | {"y": PUBLIC_JWK["x"]}]}),
        "jwks holds a key that cannot be read",
    ),
    (
        "unknown key type",
        _jwt({"keys": [PUBLIC_JWK, {"kty": "ML-DSA", "pub": "AAAA"}]}),
        "jwks holds a key of an unsupported type",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "detail"),
    [pytest.param(o, d, id=i) for i, o, d in INVALID_METADATA],
)
def test_register_refuses_invalid_metadata_and_writes_nothing(
    app: FastAPI, session: Session, vault: Vault, overrides: dict[str, Any], detail: str
) -> None:
    with pytest.raises(InvalidClientMetadata) as caught:
        _register(session, vault, **overrides)

    assert type(caught.value) is InvalidClientMetadata
    assert caught.value.detail == detail
    assert isinstance(caught.value, ValidationFailed)
    assert caught.value.status == 422
    assert _stored(app) == []


INVALID_REDIRECTS = [
    ("none", [], "at least one redirect_uri is required"),
    ("relative", ["/callback"], "redirect_uris[0] must be an absolute URI"),
    ("no scheme", ["acme.example/callback"], "redirect_uris[0] must be an absolute URI"),
    ("scheme-relative", ["//acme.example/cb"], "redirect_uris[0] must be an absolute URI"),
    ("fragment", [CALLBACK + "#state"], "redirect_uris[0] must not have a fragment"),
    ("empty fragment", [CALLBACK + "#"], "redirect_uris[0] must not have a fragment"),
    ("http", ["http://acme.example/cb"], f"redirect_uris[0] {HTTPS_ONLY}"),
    ("http lookalike", ["http://localhost.acme.example/cb"], f"redirect_uris[0] {HTTPS_ONLY}"),
    ("http ip lookalike", ["http://127.0.0.1.nip.io/cb"], f"redirect_uris[0] {HTTPS_ONLY}"),
    ("custom scheme", ["com.acme.app:/cb"], f"redirect_uris[0] {HTTPS_ONLY}"),
    ("javascript", ["javascript:alert(1)"], f"redirect_uris[0] {HTTPS_ONLY}"),
    ("no host", ["https:///cb"], "redirect_uris[0] must be an absolute URI with a host"),
    (
        "credentials",
        ["https://user:pw@acme.example/cb"],
        "redirect_uris[0] must not contain a user name or password",
    ),
    ("bad port", ["https://acme.example:99999/cb"], "redirect_uris[0] has an invalid port"),
    (
        "space",
        ["https://acme.example/c b"],
        "redirect_uris[0] must not contain spaces or control characters",
    ),
    ("second one bad", [CALLBACK, "http://acme.example/cb"], f"redirect_uris[1] {HTTPS_ONLY}"),
    (
        "too long",
        ["https://acme.example/" + "a" * 2000],
        "redirect_uris[0] is longer than 2000 characters",
    ),
    (
        "too many",
        [f"https://acme.example/{n}" for n in range(21)],
        "at most 20 redirect_uris are allowed",
    ),
]


@pytest.mark.parametrize(
    ("redirect_uris", "detail"),
    [pytest.param(u, d, id=i) for i, u, d in INVALID_REDIRECTS],
)
def test_register_refuses_an_unsafe_redirect_uri_and_writes_nothing(
    app: FastAPI, session: Session, vault: Vault, redirect_uris: list[str], detail: str
) -> None:
    with pytest.raises(InvalidRedirectURI) as caught:
        _register(session, vault, redirect_uris=redirect_uris)

    assert caught.value.detail == detail
    assert caught.value.oauth_error == "invalid_redirect_uri"
    assert _stored(app) == []


# -- look-up, secrets, disabling -------------------------------------------


def test_get_returns_the_vendor_and_none_for_an_unknown_client_id(
    session: Session, vault: Vault
) -> None:
    vendor, _ = _register(session, vault)

    found = service.get(session, vendor.id)
    assert found is not None
    assert (found.id, found.name) == (vendor.id, "Acme")
    assert service.get(session, "vnd_unknown") is None


def test_list_vendors_returns_every_vendor_in_registration_order(
    session: Session, vault: Vault
) -> None:
    ids = [_register(session, vault, name=f"Vendor {n}")[0].id for n in range(3)]
    service.disable(session, vault, ids[1])

    assert [(v.id, v.name) for v in service.list_vendors(session)] == [
        (ids[0], "Vendor 0"),
        (ids[1], "Vendor 1"),
        (ids[2], "Vendor 2"),
    ]


def test_check_secret_accepts_only_the_vendors_own_secret(session: Session, vault: Vault) -> None:
    vendor, secret = _register(session, vault)
    other, other_secret = _register(session, vault)
    assert secret is not None
    assert other_secret is not None
    assert vendor.secret_hash is not None

    assert service.check_secret(vault, vendor, secret) is True
    assert service.check_secret(vault, vendor, other_secret) is False
    assert service.check_secret(vault, vendor, secret[:-1]) is False
    assert service.check_secret(vault, vendor, secret + "x") is False
    assert service.check_secret(vault, vendor, "") is False
    # Holding the stored hash is no use either.
    assert service.check_secret(vault, vendor, vendor.secret_hash.hex()) is False


def test_disable_stops_the_secret_working_but_get_still_returns_the_vendor(
    app: FastAPI, session: Session, vault: Vault
) -> None:
    vendor, secret = _register(session, vault)
    assert secret is not None
    before = datetime.now(UTC)

    disabled = service.disable(session, vault, vendor.id)

    assert disabled.disabled_at is not None
    assert before <= disabled.disabled_at <= datetime.now(UTC)
    [stored] = _stored(app)
    assert stored.disabled_at == disabled.disabled_at
    assert service.check_secret(vault, stored, secret) is False
    found = service.get(session, vendor.id)
    assert found is not None
    assert found.disabled_at == disabled.disabled_at


def test_disabling_twice_keeps_the_first_time(session: Session, vault: Vault) -> None:
    vendor, _ = _register(session, vault)
    first = service.disable(session, vault, vendor.id).disabled_at

    assert service.disable(session, vault, vendor.id).disabled_at == first


def test_disable_of_an_unknown_client_id_is_not_found(
    app: FastAPI, session: Session, vault: Vault
) -> None:
    with pytest.raises(NotFound) as caught:
        service.disable(session, vault, "vnd_unknown")

    assert caught.value.detail == "No vendor has this client id."


def test_rotate_secret_replaces_the_old_secret_at_once(
    app: FastAPI, session: Session, vault: Vault
) -> None:
    vendor, old = _register(session, vault)
    assert old is not None

    new = service.rotate_secret(session, vault, vendor.id)

    assert SECRET.match(new)
    assert new != old
    [stored] = _stored(app)
    assert service.check_secret(vault, stored, new) is True
    assert service.check_secret(vault, stored, old) is False


def test_rotate_secret_refuses_unknown_and_private_key_jwt_vendors(
    app: FastAPI, session: Session, vault: Vault
) -> None:
    vendor, _ = _register(session, vault, **_jwt({"keys": [PUBLIC_JWK]}))

    with pytest.raises(NotFound):
        service.rotate_secret(session, vault, "vnd_unknown")
    with pytest.raises(Conflict):
        service.rotate_secret(session, vault, vendor.id)
    assert [v.secret_hash for v in _stored(app)] == [None]


# -- initial access tokens -------------------------------------------------


def test_initial_access_token_is_valid_until_it_expires(
    session: Session, vault: Vault, clock: Clock
) -> None:
    token = service.issue_initial_access_token(
        session, vault, label="acme onboarding", ttl=timedelta(days=1)
    )
    issued = clock.now

    assert service.check_initial_access_token(session, vault, token) is True
    clock.now = issued + timedelta(days=1, seconds=-1)
    assert service.check_initial_access_token(session, vault, token) is True
    clock.now = issued + timedelta(days=1)
    assert service.check_initial_access_token(session, vault, token) is False


def test_initial_access_token_without_ttl_does_not_expire(
    session: Session, vault: Vault, clock: Clock
) -> None:
    token = service.issue_initial_access_token(session, vault, label="partner", ttl=None)
    clock.now += timedelta(days=3650)

    assert service.check_initial_access_token(session, vault, token) is True


def test_initial_access_token_is_stored_only_as_its_keyed_hash(
    app: FastAPI, settings: Settings, session: Session, vault: Vault
) -> None:
    before = datetime.now(UTC)
    token = service.issue_initial_access_token(
        session, vault, label=" acme onboarding ", ttl=timedelta(hours=2)
    )

    with Session(app.state.engine) as fresh:
        [row] = fresh.exec(select(InitialAccessToken)).all()
    key = FileKeyStore(settings.key_dir_resolved).server_key("token-hash")
    assert row.token_hash == hmac.new(key, token.encode(), hashlib.sha256).digest()
    assert row.label == "acme onboarding"
    assert row.revoked_at is None
    assert before <= row.created_at <= datetime.now(UTC)
    assert row.expires_at == row.created_at + timedelta(hours=2)


def test_revoked_or_unknown_initial_access_tokens_are_refused(
    app: FastAPI, session: Session, vault: Vault
) -> None:
    token = service.issue_initial_access_token(session, vault, label="acme", ttl=None)
    with Session(app.state.engine) as fresh:
        row = fresh.get(InitialAccessToken, vault.token_hash(token))
        assert row is not None
        row.revoked_at = datetime.now(UTC)
        fresh.add(row)
        fresh.commit()

    assert service.check_initial_access_token(session, vault, token) is False
    assert service.check_initial_access_token(session, vault, "not-a-token") is False
    assert service.check_initial_access_token(session, vault, "") is False


@pytest.mark.parametrize(
    ("label", "ttl", "detail"),
    [
        pytest.param("", None, "label must not be empty", id="empty label"),
        pytest.param("  ", None, "label must not be empty", id="blank label"),
        pytest.param("x" * 201, None, "label is longer than 200 characters", id="long label"),
        pytest.param("a\tb", None, "label must not contain control characters", id="tab"),
        pytest.param("acme", timedelta(0), "ttl must be positive", id="zero ttl"),
        pytest.param("acme", timedelta(days=-1), "ttl must be positive", id="negative ttl"),
    ],
)
def test_issue_initial_access_token_refuses_bad_input_and_writes_nothing(
    app: FastAPI,
    session: Session,
    vault: Vault,
    label: str,
    ttl: timedelta | None,
    detail: str,
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        service.issue_initial_access_token(session, vault, label=label, ttl=ttl)

    assert caught.value.detail == detail
    with Session(app.state.engine) as fresh:
        assert fresh.exec(select(InitialAccessToken)).all() == []


# -- the vrm vendors command -------------------------------------------------


def _vrm(settings: Settings, *args: str) -> Ran:
    return vrm(settings, "vendors", *args)


def _vrm_script(settings: Settings, *args: str, columns: int = 80) -> Ran:
    """The installed script, for the tests that prove it end to end."""
    return vrm_script(settings, "vendors", *args, columns=columns)


def test_vrm_vendors_add_json_prints_one_object_whose_secret_works(
    app: FastAPI, settings: Settings, vault: Vault
) -> None:
    done = _vrm_script(
        settings,
        "add",
        "--name",
        "Acme Coffee",
        "--redirect-uri",
        CALLBACK,
        "--redirect-uri",
        "http://127.0.0.1:8080/cb",
        "--contact",
        "ops@acme.example",
        "--policy-uri",
        "https://acme.example/privacy",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    printed = json.loads(done.stdout)
    [stored] = _stored(app)
    assert printed == {
        "client_id": stored.id,
        "client_secret": printed["client_secret"],
        "name": "Acme Coffee",
        "redirect_uris": [CALLBACK, "http://127.0.0.1:8080/cb"],
        "logo_uri": None,
        "policy_uri": "https://acme.example/privacy",
        "notify_uri": None,
        "contacts": ["ops@acme.example"],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ALL_GRANTS,
        "jwks": None,
        "registered_by": "operator",
        "created_at": stored.created_at.isoformat(),
        "disabled_at": None,
    }
    assert CLIENT_ID.match(stored.id)
    assert SECRET.match(printed["client_secret"])
    # The server's vault, reading the same key store, accepts the secret.
    assert service.check_secret(vault, stored, printed["client_secret"]) is True


def test_vrm_vendors_add_prints_the_client_id_and_the_secret(
    app: FastAPI, settings: Settings, vault: Vault
) -> None:
    done = _vrm(settings, "add", "--name", "Acme", "--redirect-uri", CALLBACK)

    assert done.returncode == 0, done.stderr
    [stored] = _stored(app)
    lines = done.stdout.splitlines()
    assert lines[:2] == ["registered: Acme", f"client id: {stored.id}"]
    prefix = "client secret (shown only now): "
    assert len(lines) == 3
    assert lines[2].startswith(prefix)
    assert service.check_secret(vault, stored, lines[2].removeprefix(prefix)) is True


def test_vrm_vendors_add_private_key_jwt_reads_the_jwks_file(
    app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [PUBLIC_JWK]}))

    done = _vrm(
        settings,
        "add",
        "--name",
        "Acme",
        "--redirect-uri",
        CALLBACK,
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        str(jwks_file),
        "--json",
    )

    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert (printed["client_secret"], printed["jwks"]) == (None, {"keys": [PUBLIC_JWK]})
    [stored] = _stored(app)
    assert (stored.secret_hash, stored.jwks) == (None, {"keys": [PUBLIC_JWK]})


def test_vrm_vendors_add_with_a_bad_redirect_uri_fails_and_creates_no_vendor(
    app: FastAPI, settings: Settings
) -> None:
    done = _vrm(settings, "add", "--name", "Acme", "--redirect-uri", "http://acme.example/cb")

    assert done.returncode == 1
    assert done.stderr == f"vrm: redirect_uris[0] {HTTPS_ONLY}\n"
    assert done.stdout == ""
    assert _stored(app) == []


def test_vrm_vendors_add_error_stays_on_one_line_in_a_narrow_terminal(
    app: FastAPI, settings: Settings
) -> None:
    done = _vrm_script(
        settings, "add", "--name", "Acme", "--redirect-uri", CALLBACK, "--auth-method", "none"
    )

    message = f"vrm: token_endpoint_auth_method must be one of {METHODS}\n"
    assert len(message) > 80
    assert (done.returncode, done.stdout, done.stderr) == (1, "", message)
    assert _stored(app) == []


def test_vrm_vendors_add_refusing_a_private_key_writes_nothing(
    app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [PRIVATE_JWK]}))

    done = _vrm(
        settings,
        "add",
        "--name",
        "Acme",
        "--redirect-uri",
        CALLBACK,
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        str(jwks_file),
    )

    assert done.returncode == 1
    assert done.stderr == "vrm: jwks must hold public keys only\n"
    assert done.stdout == ""
    assert _stored(app) == []


def test_vrm_vendors_list_shows_every_vendor_and_no_secret(
    app: FastAPI, settings: Settings, session: Session, vault: Vault
) -> None:
    acme, acme_secret = _register(session, vault, name="Acme Coffee")
    tea, tea_secret = _register(
        session, vault, name="Tea House", redirect_uris=["https://tea.example/cb"]
    )
    service.disable(session, vault, tea.id)
    assert acme_secret is not None
    assert tea_secret is not None

    table = _vrm_script(settings, "list", columns=200)  # wide enough that no cell folds
    as_json = _vrm_script(settings, "list", "--json")

    assert table.returncode == 0, table.stderr
    assert as_json.returncode == 0, as_json.stderr
    rows = [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in table.stdout.splitlines()
        if "vnd_" in line
    ]
    assert rows == [
        [acme.id, "Acme Coffee", CALLBACK, f"{acme.created_at:%Y-%m-%d}", "active"],
        [tea.id, "Tea House", "https://tea.example/cb", f"{tea.created_at:%Y-%m-%d}", "disabled"],
    ]
    listed = json.loads(as_json.stdout)
    assert [(v["client_id"], v["name"], v["disabled_at"] is None) for v in listed] == [
        (acme.id, "Acme Coffee", True),
        (tea.id, "Tea House", False),
    ]
    assert all("client_secret" not in v and "secret_hash" not in v for v in listed)
    for output in (table.stdout, as_json.stdout):
        assert acme_secret not in output
        assert tea_secret not in output


def test_vrm_vendors_list_with_no_vendors_says_so(app: FastAPI, settings: Settings) -> None:
    done = _vrm(settings, "list")

    assert (done.returncode, done.stdout, done.stderr) == (0, "no vendors registered\n", "")


def test_vrm_vendors_disable_disables_the_vendor(
    app: FastAPI, settings: Settings, session: Session, vault: Vault
) -> None:
    vendor, secret = _register(session, vault)
    assert secret is not None

    done = _vrm(settings, "disable", vendor.id)

    assert done.returncode == 0, done.stderr
    [stored] = _stored(app)
    assert stored.disabled_at is not None
    assert done.stdout == (
        f"disabled: {vendor.id} (Acme) since {stored.disabled_at:%Y-%m-%d %H:%M:%S} UTC\n"
    )
    assert service.check_secret(vault, stored, secret) is False


def test_vrm_vendors_disable_of_an_unknown_client_id_fails(
    app: FastAPI, settings: Settings
) -> None:
    done = _vrm(settings, "disable", "vnd_unknown")

    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        "vrm: No vendor has this client id.\n",
    )


def test_vrm_vendors_rotate_secret_prints_a_new_working_secret(
    app: FastAPI, settings: Settings, session: Session, vault: Vault
) -> None:
    vendor, old = _register(session, vault)
    assert old is not None

    done = _vrm(settings, "rotate-secret", vendor.id)

    assert done.returncode == 0, done.stderr
    prefix = "new client secret (shown only now): "
    assert done.stdout.startswith(prefix)
    new = done.stdout.removeprefix(prefix).strip()
    [stored] = _stored(app)
    assert service.check_secret(vault, stored, new) is True
    assert service.check_secret(vault, stored, old) is False


def test_vrm_vendors_initial_token_prints_a_token_that_checks(
    app: FastAPI, settings: Settings, session: Session, vault: Vault
) -> None:
    before = datetime.now(UTC)
    done = _vrm(settings, "initial-token", "--label", "acme onboarding", "--ttl-days", "2")

    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    prefix = "initial access token (shown only now): "
    assert first.startswith(prefix)
    assert second == "expires in 2 days"
    token = first.removeprefix(prefix)
    assert service.check_initial_access_token(session, vault, token) is True
    [row] = session.exec(select(InitialAccessToken)).all()
    assert row.label == "acme onboarding"
    assert row.expires_at is not None
    assert before + timedelta(days=2) <= row.expires_at <= datetime.now(UTC) + timedelta(days=2)


def test_vrm_vendors_initial_token_refuses_a_zero_ttl(
    app: FastAPI, settings: Settings, session: Session
) -> None:
    done = _vrm(settings, "initial-token", "--label", "acme", "--ttl-days", "0")

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "vrm: --ttl-days must be between 1 and 3650\n"
    assert session.exec(select(InitialAccessToken)).all() == []
