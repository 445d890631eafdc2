"""A token whose grant is gone opens nothing.

Tokens are deleted with their grant (ON DELETE CASCADE), but a token row
read in the same moment as its grant's deletion, or left behind by a
restore or a hand repair, has a grant id and no grant. Only a
client-credentials token has no grant by design; a token that had one must
not be taken for one of those (a vendor-wide token), so it is refused
everywhere, as a revoked one is.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer
from tests.vendor_api.helpers import read

INVALID_TOKEN = 'Bearer realm="vrm", error="invalid_token"'


def _delete_grant_keeping_its_tokens(app: FastAPI, grant_id: str) -> None:
    """Delete the grant row alone: the foreign keys that would take its
    tokens with it are switched off for this one transaction."""
    with app.state.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        else:
            conn.exec_driver_sql("SET session_replication_role = replica")
        conn.execute(text("DELETE FROM consent_grant WHERE id = :id"), {"id": grant_id})
        conn.commit()
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        else:
            conn.exec_driver_sql("SET session_replication_role = DEFAULT")
    with app.state.engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM oauth_token WHERE grant_id = :id"), {"id": grant_id}
        ).scalar_one()
    assert left == 1  # the premise: the token row outlived its grant


def test_a_token_whose_grant_row_is_gone_is_refused_everywhere(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana, vendor, "openid profile:read feed:read")
    assert read(vendor, t["access_token"]).status_code == 200
    _delete_grant_keeping_its_tokens(app, t["grant_id"])

    r = read(vendor, t["access_token"])
    assert_problem(r, 401, "invalid-token")
    assert r.headers["www-authenticate"] == INVALID_TOKEN

    # Not a vendor-wide token either: the feed needs one, and refuses it.
    r = vendor.client.get("/v1/feed", headers=bearer(t["access_token"]))
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == INVALID_TOKEN

    r = vendor.client.get("/oauth/userinfo", headers=bearer(t["access_token"]))
    assert r.status_code == 401, r.text

    assert vendor.introspect(t["access_token"]) == {"active": False}
    assert vendor.introspect(t["refresh_token"]) == {"active": False}
    r = vendor.refresh(t["refresh_token"])
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"
