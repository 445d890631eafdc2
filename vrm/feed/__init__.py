"""The change log behind the vendor feed and incremental history reads."""
