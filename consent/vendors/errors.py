"""Errors of the vendor registry, under ``vrm.errors.ValidationFailed`` (422).

``oauth_error`` is the RFC 7591 section 3.2.2 error code, for the dynamic
registration endpoint, which answers in the OAuth error format::

    ValidationFailed
      InvalidClientMetadata   invalid_client_metadata
        InvalidRedirectURI    invalid_redirect_uri
"""

from __future__ import annotations

from vrm.errors import ValidationFailed


class InvalidClientMetadata(ValidationFailed):
    oauth_error = "invalid_client_metadata"


class InvalidRedirectURI(InvalidClientMetadata):
    oauth_error = "invalid_redirect_uri"
