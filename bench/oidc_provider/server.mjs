// node oidc-provider, configured with the same rules as our authorization
// server, as the peer that bench/token_endpoint.py measures ours against.
//
//   node server.mjs [--port 4100] [--workers 1]
//
// Environment: BENCH_PORT, BENCH_WORKERS (defaults for the flags),
// BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_REDIRECT_URI, BENCH_SCOPES
// (space separated), BENCH_ADAPTER (map | builtin | postgres, see below),
// BENCH_DATABASE_URL (postgresql://user@host:port/db, for postgres). Prints
// one line "READY <issuer> workers=<n> adapter=<name>" on stdout once every
// worker listens; SIGTERM or SIGINT stops them all.
//
// Rules: one confidential client (client_secret_basic; authorization_code,
// refresh_token and client_credentials), PKCE required (oidc-provider 9 only
// knows S256), a refresh token on every code exchange and rotation on every
// use (replaying a rotated one revokes the grant), opaque access tokens. No
// OpenID scope is used, so no ID tokens are signed.
//
// The store: BENCH_ADAPTER=map (default) is the small Map-based adapter
// below. BENCH_ADAPTER=builtin is oidc-provider's own development adapter (an
// LRU of 1000 entries); it keeps, per grant, a map of every token ever issued
// under it and rescans that map on every save (Math.max over its values), so
// under sustained refresh rotation it slows down as the run goes on (seen
// here: ~1.4k/s falling to ~1.0k/s within 12 s). A production adapter (Redis,
// a database) keeps that index in O(1), so the Map adapter is the fairer
// in-memory peer. BENCH_ADAPTER=postgres (pg_adapter.mjs) is durable: every
// entry is a committed row in one PostgreSQL table of the database
// BENCH_DATABASE_URL names, through a pool of 10 connections per process; the
// primary creates the table before any worker starts.
//
// Refresh tokens come from the real authorization code flow. There is no
// browser and devInteractions is off: the interaction URL below is a tiny
// route that stands in for the login and consent pages. It signs in one fixed
// bench account and grants exactly the scopes the request asked for, then
// hands back to oidc-provider (interactionFinished). Everything else
// (/auth, the interaction and session cookies, the code, PKCE checking and the
// code exchange at /token) is oidc-provider's own code. A client drives it
// with plain HTTP: GET /auth?... -> 303 /interaction/<uid> -> 303
// /auth/<uid> -> 303 <redirect_uri>?code=... -> POST /token.
//
// --workers N forks N processes with node:cluster sharing the port. With the
// in-memory stores each keeps its own, so a refresh token only works on the
// worker that minted it. cluster hands a whole TCP connection to one worker, so
// a client that runs the flow on a keep-alive connection and then refreshes on
// that same connection always reaches the right worker (bench/token_endpoint.py does).
// With postgres every worker shares the database, so any worker serves any
// token.

import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import process from 'node:process';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.BENCH_PORT ?? '4100' },
    workers: { type: 'string', default: process.env.BENCH_WORKERS ?? '1' },
  },
});

const PORT = Number(args.port);
const WORKERS = Math.max(1, Number(args.workers));
const HOST = '127.0.0.1';
const ISSUER = `http://${HOST}:${PORT}`;
const BENCH_ACCOUNT = 'bench-customer';
const ADAPTER = process.env.BENCH_ADAPTER ?? 'map';
if (!['map', 'builtin', 'postgres'].includes(ADAPTER)) {
  throw new Error(`BENCH_ADAPTER=${ADAPTER}: map, builtin or postgres`);
}
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? '';
if (ADAPTER === 'postgres' && !DATABASE_URL) {
  throw new Error('BENCH_ADAPTER=postgres needs BENCH_DATABASE_URL (postgresql://user@host:port/db)');
}
const POOL_SIZE = 10; // PostgreSQL connections per process

async function startPrimary() {
  if (ADAPTER === 'postgres') {
    const { createSchema } = await import('./pg_adapter.mjs');
    await createSchema(DATABASE_URL);
  }

  // One signing key and one cookie key for every worker (no worker should
  // fall back to oidc-provider's development keys).
  // RSA, because RS256 is the default ID token algorithm of client metadata
  // (no ID token is issued here, but the client is validated against it).
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const shared = {
    BENCH_JWK: JSON.stringify({ ...privateKey.export({ format: 'jwk' }), kid: 'bench', use: 'sig' }),
    BENCH_COOKIE_KEY: randomBytes(32).toString('base64url'),
  };

  // With BENCH_EXIT_ON_STDIN_EOF=1 the server also stops when its stdin
  // closes, so it cannot outlive a benchmark that was killed outright.
  const onStdinEof = (stop) => {
    if (process.env.BENCH_EXIT_ON_STDIN_EOF !== '1') return;
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  };

  if (WORKERS === 1) {
    onStdinEof(() => process.exit(0));
    Object.assign(process.env, shared);
    await startWorker(() => console.log(`READY ${ISSUER} workers=1 adapter=${ADAPTER}`));
    return;
  }

  let listening = 0;
  let stopping = false;
  for (let i = 0; i < WORKERS; i += 1) {
    cluster.fork(shared);
  }
  cluster.on('listening', () => {
    listening += 1;
    if (listening === WORKERS) {
      console.log(`READY ${ISSUER} workers=${WORKERS} adapter=${ADAPTER}`);
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`worker ${worker.process.pid} died (${signal ?? code}); stopping`);
      stop();
    }
    if (Object.keys(cluster.workers).length === 0) process.exit(stopping ? 0 : 1);
  });
  function stop() {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
  }
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  onStdinEof(stop);
}

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

// An in-memory adapter (per process) with O(1) operations: every entry in one
// Map with its expiry, plus a Set of members per grant for revokeByGrantId.
function mapAdapter() {
  const store = new Map();
  const grants = new Map();
  const sessionUids = new Map();
  const userCodes = new Map();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [key, entry] of store) if (entry.expiresAt <= now) store.delete(key);
  }, 30_000);
  sweep.unref();

  return class MapAdapter {
    constructor(model) {
      this.model = model;
    }

    key(id) {
      return `${this.model}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
      store.set(key, { payload, expiresAt });
      if (this.model === 'Session') sessionUids.set(payload.uid, id);
      if (payload.userCode) userCodes.set(payload.userCode, id);
      if (payload.grantId && GRANTABLE.has(this.model)) {
        let members = grants.get(payload.grantId);
        if (!members) grants.set(payload.grantId, (members = new Set()));
        members.add(key);
      }
    }

    async find(id) {
      const key = this.key(id);
      const entry = store.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt <= Date.now()) {
        store.delete(key);
        return undefined;
      }
      return entry.payload;
    }

    async findByUid(uid) {
      const id = sessionUids.get(uid);
      return id === undefined ? undefined : this.find(id);
    }

    async findByUserCode(userCode) {
      const id = userCodes.get(userCode);
      return id === undefined ? undefined : this.find(id);
    }

    async consume(id) {
      const entry = store.get(this.key(id));
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id) {
      store.delete(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const members = grants.get(grantId);
      if (!members) return;
      for (const key of members) store.delete(key);
      grants.delete(grantId);
    }
  };
}

async function storeAdapter() {
  if (ADAPTER === 'map') return mapAdapter();
  if (ADAPTER === 'postgres') {
    const { postgresAdapter } = await import('./pg_adapter.mjs');
    return postgresAdapter(DATABASE_URL, { max: POOL_SIZE });
  }
  return undefined; // builtin: oidc-provider's development adapter
}

async function startWorker(onListening) {
  const { default: Provider } = await import('oidc-provider');

  const clientId = process.env.BENCH_CLIENT_ID ?? 'bench-client';
  const clientSecret = process.env.BENCH_CLIENT_SECRET ?? 'bench-secret-bench-secret-bench-secret';
  const redirectUri = process.env.BENCH_REDIRECT_URI ?? 'https://vendor.example/callback';
  const scopes = (process.env.BENCH_SCOPES ?? 'profile.email:read preferences:read').split(' ').filter(Boolean);

  const configuration = {
    adapter: await storeAdapter(),
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      redirect_uris: [redirectUri],
      scope: scopes.join(' '),
    }],
    scopes,
    pkce: { required: () => true },
    rotateRefreshToken: true,
    // Every customer grant gets a refresh token (no offline_access dance),
    // and it outlives the browser session that created it.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      // Plain OAuth tokens, opaque; no audience-restricted JWT access tokens.
      resourceIndicators: { enabled: false },
    },
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    cookies: { keys: [process.env.BENCH_COOKIE_KEY ?? randomBytes(32).toString('base64url')] },
    jwks: process.env.BENCH_JWK ? { keys: [JSON.parse(process.env.BENCH_JWK)] } : undefined,
  };

  const provider = new Provider(ISSUER, configuration);
  provider.on('server_error', (ctx, err) => console.error('server_error', err));

  // Stand-in for the login and consent pages: see the header comment.
  async function interaction(req, res) {
    const { prompt, params } = await provider.interactionDetails(req, res);
    const result = {};
    if (prompt.name === 'login') result.login = { accountId: BENCH_ACCOUNT };
    const grant = new provider.Grant({ accountId: BENCH_ACCOUNT, clientId: params.client_id });
    if (params.scope) grant.addOIDCScope(params.scope);
    result.consent = { grantId: await grant.save() };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }

  const callback = provider.callback();
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
      interaction(req, res).catch((err) => {
        console.error('interaction failed', err);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
      return;
    }
    callback(req, res);
  });
  // Keep idle keep-alive connections open between minting and measuring.
  server.keepAliveTimeout = 60_000;
  server.listen(PORT, HOST, onListening);
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

const fail = (err) => {
  console.error('start-up failed:', err);
  process.exit(1);
};
if (cluster.isPrimary) {
  startPrimary().catch(fail);
} else {
  startWorker().catch(fail);
}
