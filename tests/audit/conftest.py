"""The audit tests drive consent and reads as the consent tests do."""

from __future__ import annotations

from tests.consent.conftest import other_vendor, vendor

__all__ = ["other_vendor", "vendor"]
