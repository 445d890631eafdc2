"""The customer's machine-readable export (GDPR Art. 20)."""
