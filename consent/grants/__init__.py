"""Grants: what a customer allowed a vendor, for which purpose, until when."""
