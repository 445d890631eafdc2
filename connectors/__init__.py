"""The vendor's connector (``vrm-connector``): it runs beside the vendor's
CRM and talks to the store over HTTP only, never importing the server's
packages (the import contract in pyproject.toml says so).

- :mod:`connectors.config`: the connector's TOML configuration;
- :mod:`connectors.store`: the store's HTTP API, as a client-credentials
  OAuth client (Authlib's httpx client), with retries;
- :mod:`connectors.mapping`: store fields to sink fields;
- :mod:`connectors.source`: the feed as a public dlt source, and its pages;
- :mod:`connectors.ops`, :mod:`connectors.destination`,
  :mod:`connectors.sync`: ``vrm-connector sync`` on dlt (feed items as sink
  ops, applied by a dlt destination, the cursor saved after the load);
- :mod:`connectors.authorize`, :mod:`connectors.tokens`: one customer's
  consent by the code flow with PKCE, and the sealed token store;
- :mod:`connectors.sinks`: where the data goes (the :class:`Sink` protocol,
  and each sink);
- :mod:`connectors.notices`: checking the store's revocation notices;
- :mod:`connectors.listen`: the RFC 8935 receiver that purges what a
  notice names;
- :mod:`connectors.state`: what the connector remembers (notices seen,
  counts);
- :mod:`connectors.cli`: the ``vrm-connector`` command.

See docs/connectors.md.
"""

import os

# dlt reports anonymous usage to its makers unless told not to. A vendor's
# connector tells no third party what it syncs: off, unless the vendor's
# environment says otherwise (docs/connectors.md).
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
