"""Vendor side: OAuth client, sync engine and CRM sinks (later issues)."""
