"""The customer's web pages, served by the store's own process."""
