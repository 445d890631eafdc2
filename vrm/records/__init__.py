"""Document categories (profile, preferences): one sealed JSON document each."""
