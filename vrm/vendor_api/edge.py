"""The vendor API's token edge: the reader (vendor, customer, grant) an
active access token stands for. The token itself is read from the request
and checked at the one bearer edge, consent/oauth/bearer.py."""

from __future__ import annotations

from dataclasses import dataclass

from consent.grants.models import Grant
from consent.grants.service import accesses_of

# The refusals are the bearer edge's (RFC 6750 3.1), named here too.
from consent.oauth.bearer import InsufficientScope as InsufficientScope
from consent.oauth.bearer import InvalidToken as InvalidToken
from consent.oauth.tokens import ActiveToken
from consent.policy import Access
from vrm.keys.pairwise import pairwise_subject
from vrm.keys.service import Vault

NO_CUSTOMER = "This token names no customer; use one from the authorization code flow."


@dataclass(frozen=True)
class Reader:
    """One vendor reading one customer under one grant."""

    vendor_id: str
    customer_id: str
    grant_id: str
    purpose: str
    subject: str
    accesses: list[Access]


def reader_of(vault: Vault, active: ActiveToken) -> Reader:
    """The reader an access token from the authorization code flow stands
    for; InsufficientScope for a token that names no customer."""
    customer_id = active.token.customer_id
    if customer_id is None or active.grant is None:
        raise InsufficientScope(NO_CUSTOMER)
    return Reader(
        vendor_id=active.vendor.id,
        customer_id=customer_id,
        grant_id=active.grant.id,
        purpose=active.grant.purpose,
        subject=pairwise_subject(vault, active.vendor.id, customer_id),
        accesses=active.accesses,
    )


def reader_of_grant(vault: Vault, grant: Grant) -> Reader:
    """The reader a token of ``grant`` stands for when it holds all the
    grant allows: what the vendor may read under it today (the customer's
    own view of it, client/web/vendors.py). Whether the grant is active is
    the caller's to check."""
    return Reader(
        vendor_id=grant.vendor_id,
        customer_id=grant.customer_id,
        grant_id=grant.id,
        purpose=grant.purpose,
        subject=pairwise_subject(vault, grant.vendor_id, grant.customer_id),
        accesses=accesses_of(grant),
    )
