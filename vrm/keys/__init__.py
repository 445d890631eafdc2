"""Per-customer data keys: created, wrapped, cached, rotated, shredded."""
