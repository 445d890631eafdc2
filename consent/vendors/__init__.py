"""Vendors: the confidential OAuth clients that ask customers for consent."""
