"""Lost and broken keys: a customer's key or a server key missing,
unreadable, truncated or replaced, at start and while running.

A broken customer key fails that customer's reads alone, with a clear
problem; a broken server key stops the server from starting, with one line
naming the key; no key is ever made again in place of a lost one.

The test process runs as root, which reads a mode-000 file anyway; an
unreadable key is a directory in the key file's place, which no one can
read as a file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session, select

from tests.conftest import PASSWORD, Person
from tests.consent.conftest import Vendor, register_vendor, tokens_for
from tests.kit import Ran, assert_problem, vrm, vrm_script
from vrm.accounts.models import Customer
from vrm.app import create_app
from vrm.keys.models import DataKey
from vrm.keys.server import SERVER_KEYS, ServerKeyError, open_key_store
from vrm.settings import Settings

ME = "/api/v1/me"
FAULTS = ["missing", "unreadable", "truncated", "another's"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # No data key cache: every read unwraps, so a broken key shows at once
    # (the bound a cache adds is tested in test_key_cache_processes.py).
    # Server custody: these are the faults of root key files in the key
    # store, which a customer-held root key never is.
    return settings.model_copy(update={"key_cache_seconds": 0.0, "key_custody": "server"})


def _key_files(settings: Settings) -> dict[str, bytes | None]:
    """Every entry of the key store: a file's bytes, None for a folder."""
    root = settings.key_dir_resolved
    return {
        p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def _break(path: Path, fault: str, other: Path) -> None:
    if fault == "missing":
        path.unlink()
    elif fault == "unreadable":
        path.unlink()
        path.mkdir()
    elif fault == "truncated":
        path.write_bytes(path.read_bytes()[:16])
    else:
        shutil.copyfile(other, path)


def _customer_key(settings: Settings, person: Person) -> Path:
    return settings.key_dir_resolved / "customers" / person.id / "1.key"


def _server_key(settings: Settings, name: str) -> Path:
    return settings.key_dir_resolved / "server" / f"{name}.key"


# -- a customer's key --------------------------------------------------------


def _assert_customer_problem(r: Response, fault: str) -> None:
    if fault == "another's":
        # The other customer's key is whole: only the unwrap can tell.
        detail = "a wrapped data key failed its integrity check"
        assert_problem(r, 500, "integrity", detail=detail, instance=f"{ME}/profile")
    else:
        detail = "the customer's root key is gone (erased or missing)"
        assert_problem(r, 500, "key-unavailable", detail=detail, instance=f"{ME}/profile")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("when", ["running", "on start"])
def test_a_broken_customer_key_fails_that_customers_reads_alone(
    app: FastAPI, settings: Settings, ana: Person, bob: Person, fault: str, when: str
) -> None:
    r = bob.client.put(f"{ME}/profile", json={"given_name": "Bob"})
    assert r.status_code == 200, r.text
    _break(_customer_key(settings, ana), fault, _customer_key(settings, bob))
    before = _key_files(settings)
    served = create_app(settings) if when == "on start" else app
    ana_client = TestClient(served, cookies=dict(ana.client.cookies))
    bob_client = TestClient(served, cookies=dict(bob.client.cookies))

    r = ana_client.get(f"{ME}/profile")
    _assert_customer_problem(r, fault)
    r = bob_client.get(f"{ME}/profile")
    assert r.status_code == 200, r.text
    assert r.json()["given_name"] == "Bob"
    # Nothing was made in place of the broken key.
    assert _key_files(settings) == before
    if served is not app:
        served.state.engine.dispose()


# -- vrm keys check and vrm customers erase ------------------------------------


def _vrm(settings: Settings, *args: str) -> Ran:
    return vrm(settings, *args)


def _check_line(settings: Settings, ana: Person, fault: str) -> str:
    path = _customer_key(settings, ana)
    what = f"root key 1 of customer {ana.id}"
    if fault == "missing":
        return f"customer {ana.id}: missing: {what} is missing ({path})"
    if fault == "unreadable":
        return f"customer {ana.id}: unreadable: {what} cannot be read ({path}: Is a directory)"
    if fault == "truncated":
        return f"customer {ana.id}: unreadable: {what} is damaged ({path}: 16 bytes, not 32)"
    return (
        f"customer {ana.id}: wrong: root key 1 does not open the account data key "
        "(another customer's key, or an altered data key row)"
    )


def test_vrm_keys_check_passes_when_every_key_opens(
    app: FastAPI, settings: Settings, ana: Person, bob: Person
) -> None:
    done = _vrm(settings, "keys", "check")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "2 customers' root keys are held by the server\n"
        "every server key, root key and escrow key the server holds is present and opens "
        "its data\n"
    )


@pytest.mark.parametrize("fault", FAULTS)
def test_vrm_keys_check_lists_the_customer_whose_key_is_broken(
    app: FastAPI, settings: Settings, ana: Person, bob: Person, fault: str
) -> None:
    _break(_customer_key(settings, ana), fault, _customer_key(settings, bob))
    done = _vrm(settings, "keys", "check")
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout == (
        f"{_check_line(settings, ana, fault)}\n2 customers' root keys are held by the server\n"
    )


def test_vrm_keys_check_lists_a_broken_server_key(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    path = _server_key(settings, "blind-index")
    path.unlink()
    done = _vrm(settings, "keys", "check")
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout == (
        f"server key blind-index is missing ({path}), and the database holds data that needs "
        "it (customer): restore it from the key store's backup; vrm init will not replace it\n"
        "1 customer's root key is held by the server\n"
    )


def test_vrm_customers_erase_erases_an_account_whose_keys_are_gone(
    app: FastAPI, settings: Settings, ana: Person, bob: Person
) -> None:
    shutil.rmtree(_customer_key(settings, ana).parent)
    done = _vrm(settings, "customers", "erase", ana.id)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"erased customer {ana.id}\n"
    with Session(app.state.engine) as session:
        assert session.exec(select(Customer.id)).all() == [bob.id]
        assert {k.customer_id for k in session.exec(select(DataKey))} == {bob.id}
    r = ana.client.get(ME)
    assert r.status_code == 401, r.text
    r = bob.client.get(f"{ME}/profile")
    assert r.status_code == 200, r.text
    assert _vrm(settings, "keys", "check").returncode == 0


def test_vrm_customers_erase_of_an_unknown_id_fails_with_one_line(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    done = _vrm(settings, "customers", "erase", "0123456789abcdef0123456789abcdef")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "vrm: no customer with id 0123456789abcdef0123456789abcdef\n"
    with Session(app.state.engine) as session:
        assert session.exec(select(Customer.id)).all() == [ana.id]


# -- server keys ---------------------------------------------------------------


@pytest.fixture
def in_use(app: FastAPI, ana: Person) -> Vendor:
    """Rows that need the server keys: a customer, a session, a vendor, a
    grant with tokens, its feed notice."""
    vendor = register_vendor(app)
    tokens_for(ana, vendor, "openid profile.email:read")
    return vendor


# What each key's refusal names when the rows above are there.
NEEDED = {
    "blind-index": "customer",
    "token-hash": "login_session, vendor, authorization_code, oauth_token",
    "pairwise-subject": "consent_grant, feed_notice",
    "pairwise-event": "consent_grant",
    "signing-es256": "consent_grant",
    "deposit-key": None,
    # No checkpoint is signed in these tests (tests/conftest.py).
    "audit-log": None,
    "csrf": None,
}


def _refusal(settings: Settings, name: str, fault: str) -> str:
    path = _server_key(settings, name)
    restore = "restore it from the key store's backup; vrm init will not replace it"
    if fault == "unreadable":
        return f"server key {name} cannot be read ({path}: Is a directory): {restore}"
    if fault == "truncated":
        return f"server key {name} is damaged ({path}: 16 bytes, not 32): {restore}"
    if NEEDED[name] is None:
        return f"server key {name} is missing ({path}): run vrm init to create it"
    return (
        f"server key {name} is missing ({path}), and the database holds data that needs "
        f"it ({NEEDED[name]}): {restore}"
    )


def test_every_server_key_is_listed_with_what_needs_it() -> None:
    assert sorted(k.name for k in SERVER_KEYS) == sorted(NEEDED)


@pytest.mark.parametrize("fault", ["missing", "unreadable", "truncated"])
@pytest.mark.parametrize("name", [k.name for k in SERVER_KEYS])
def test_a_broken_server_key_stops_the_start_naming_it(
    app: FastAPI, settings: Settings, in_use: Vendor, ana: Person, name: str, fault: str
) -> None:
    _break(_server_key(settings, name), fault, _server_key(settings, "csrf"))
    before = _key_files(settings)
    with pytest.raises(ServerKeyError) as refused:
        create_app(settings)
    assert str(refused.value) == _refusal(settings, name, fault)
    assert _key_files(settings) == before


@pytest.mark.parametrize("name", [k.name for k in SERVER_KEYS])
def test_a_server_key_lost_while_running_is_not_made_again(
    app: FastAPI, settings: Settings, in_use: Vendor, ana: Person, name: str
) -> None:
    _server_key(settings, name).unlink()
    before = _key_files(settings)
    # The running server read every server key at start and goes on.
    r = TestClient(app).post("/api/v1/session", json={"email": ana.email, "password": ana.password})
    assert r.status_code == 200, r.text
    r = in_use.client.get("/oauth/jwks")
    assert r.status_code == 200, r.text
    r = TestClient(app).post(
        "/api/v1/accounts", json={"email": ana.email, "password": "a new long passphrase"}
    )
    assert r.status_code == 409, r.text
    assert _key_files(settings) == before


def test_a_blind_index_key_from_elsewhere_stops_the_start(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    # Whole, 32 bytes, and not the key ana's email was indexed with: she
    # could not log in, and her email could sign up again.
    _break(_server_key(settings, "blind-index"), "another's", _server_key(settings, "csrf"))
    with pytest.raises(ServerKeyError) as refused:
        create_app(settings)
    assert str(refused.value) == (
        "server key blind-index is not the key the emails were indexed with "
        f"(customer {ana.id}'s email index does not match): restore the right file from the "
        "key store's backup; vrm init will not replace it"
    )
    done = _vrm(settings, "keys", "check")
    assert (done.returncode, done.stdout) == (
        1,
        f"{refused.value}\n1 customer's root key is held by the server\n",
    )


def _from_elsewhere(settings: Settings, name: str) -> None:
    # Whole, 32 bytes, and another key (the csrf key's, or for it the
    # audit log's).
    other = "audit-log" if name == "csrf" else "csrf"
    _break(_server_key(settings, name), "another's", _server_key(settings, other))


def _not_this_databases(name: str) -> str:
    return (
        f"server key {name} is not the key this database was made with (its check does not "
        "match): restore the right file from the key store's backup; vrm init will not "
        "replace it"
    )


@pytest.mark.parametrize("name", [k.name for k in SERVER_KEYS if k.name != "blind-index"])
def test_any_server_key_from_elsewhere_stops_the_start_naming_it(
    app: FastAPI, settings: Settings, name: str
) -> None:
    # Until the checks, a token-hash or pairwise key from elsewhere started
    # a server that logged nobody in, or gave vendors new subjects.
    _from_elsewhere(settings, name)
    before = _key_files(settings)
    with pytest.raises(ServerKeyError) as refused:
        create_app(settings)
    assert str(refused.value) == _not_this_databases(name)
    assert _key_files(settings) == before
    done = _vrm(settings, "keys", "check")
    assert (done.returncode, done.stdout) == (1, f"{refused.value}\n")


def test_a_blind_index_key_from_elsewhere_is_refused_with_only_customer_held_customers(
    app: FastAPI, settings: Settings
) -> None:
    # The server cannot open their emails to compare their index: the
    # kept check tells.
    app.state.settings = settings.model_copy(update={"key_custody": "customer"})
    with TestClient(app) as c:
        r = c.post("/api/v1/accounts", json={"email": "ana@example.org", "password": PASSWORD})
        assert r.status_code == 201, r.text
    _from_elsewhere(settings, "blind-index")
    with pytest.raises(ServerKeyError) as refused:
        create_app(settings)
    assert str(refused.value) == _not_this_databases("blind-index")


def test_vrm_serve_refuses_to_start_without_the_blind_index_key_customers_need(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    path = _server_key(settings, "blind-index")
    path.unlink()
    # The installed script: were the refusal to fail, a server would start.
    done = vrm_script(settings, "serve", "--port", "1")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"vrm: {_refusal(settings, 'blind-index', 'missing')}\n"
    # vrm init will not make a new one either.
    done = _vrm(settings, "init")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"vrm: {_refusal(settings, 'blind-index', 'missing')}\n"
    assert not path.exists()


def test_vrm_init_makes_a_lost_key_that_nothing_needs(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    path = _server_key(settings, "csrf")
    path.unlink()
    done = _vrm(settings, "init")
    assert done.returncode == 0, done.stderr
    assert len(path.read_bytes()) == 32
    create_app(settings).state.engine.dispose()


def test_a_fresh_folder_without_vrm_init_is_refused_and_gets_no_keys(
    sqlite_template: Path, tmp_path: Path
) -> None:
    fresh = Settings(data_dir=tmp_path / "var")
    fresh.data_dir.mkdir()
    shutil.copy(sqlite_template, fresh.data_dir / "vrm.db")
    with pytest.raises(ServerKeyError) as refused:
        create_app(fresh)
    path = fresh.key_dir_resolved / "server" / "blind-index.key"
    assert str(refused.value) == (
        f"server key blind-index is missing ({path}): run vrm init to create it"
    )
    assert not fresh.key_dir_resolved.exists()
    open_key_store(fresh, create=True)
    assert sorted(p.name for p in (fresh.key_dir_resolved / "server").iterdir()) == sorted(
        f"{k.name}.key" for k in SERVER_KEYS
    )
    create_app(fresh).state.engine.dispose()
