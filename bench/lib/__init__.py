"""What the benchmark scripts share; the scripts are the modules of ``bench``.

- ``http``: a raw HTTP/1.1 keep-alive connection over asyncio streams, the
  load generators' client.
- ``authcode``: refresh tokens from the authorization code flow with PKCE,
  run on a load connection itself.
- ``machine``: free ports, CPU of a process tree and of the whole machine,
  waiting for the machine to be quiet, percentiles.
- ``ours``: our server started as an operator starts it (``vrm init``,
  ``vrm vendors add``, ``vrm serve``), and tokens through its consent form.
- ``oidc_provider``: node oidc-provider, the authorization-server peer.
- ``solid``: the Community Solid Server, the personal-data-store peer.
- ``token_load``: the token endpoint's load (spawned client processes).
- ``load``: closed-loop authorized GETs, the data API's load.
- ``seed``: customers written in bulk, as the services would write them
  (``COPY`` on PostgreSQL); ``seed_rows``: one customer's rows.
- ``people``: realistic profiles, preferences and history events.
- ``callgrind``: our server under valgrind's callgrind, counting the
  instructions its requests cost.
"""
