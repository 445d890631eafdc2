"""VRM: a customer-controlled personal data store."""

__version__ = "0.1.0"
