"""Revocation notices: the store tells a vendor at once that consent ended.

When a grant ends or shrinks, its tombstone on the vendor's feed
(consent/grants/revocation.py) also puts a notice in an outbox, in the same
transaction. The server's background work (or ``vrm worker``) pushes each
as a Security Event Token (RFC 8417, Shared Signals Framework profile) to
the vendor's registered ``notify_uri`` (RFC 8935), until the vendor
answers 202, retrying with backoff for a day; the feed's tombstones remain
the fallback. Each attempt and the acknowledgement go on the audit log.
See docs/notices.md.
"""
