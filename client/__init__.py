"""Customer side: web pages, vrm-me CLI and Python SDK (later issues)."""
