"""Pairwise identifiers: what one vendor sees of an id of ours.

Stable for that vendor, unlinkable across vendors without the server key.
Used for OIDC subjects, history event ids in the data API and the feed.
Lives here, beside the keys, because the store (account erasure, the feed)
and the authorization server both need it.
"""

from __future__ import annotations

import base64

from vrm.keys.service import Vault


def pairwise(vault: Vault, key_name: str, vendor_id: str, value: str, size: int = 32) -> str:
    """``value`` as one vendor sees it: stable for that vendor, unlinkable
    across vendors without the server key ``key_name``."""
    digest = vault.server_mac(key_name, f"{vendor_id}\0{value}".encode())
    return base64.urlsafe_b64encode(digest[:size]).rstrip(b"=").decode()


def pairwise_subject(vault: Vault, vendor_id: str, customer_id: str) -> str:
    """The customer's id as one vendor sees it (OIDC Core 8.1)."""
    return pairwise(vault, "pairwise-subject", vendor_id, customer_id)


def pairwise_event_id(vault: Vault, vendor_id: str, event_id: str) -> str:
    # Event ids are the same for every vendor; handing them out raw would
    # let two vendors link one customer's histories.
    return pairwise(vault, "pairwise-event", vendor_id, event_id, size=18)
