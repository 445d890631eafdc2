// A durable oidc-provider store: its Adapter interface over PostgreSQL with
// node-postgres (`pg`), so the peer can be measured on the same terms as our
// server, which commits every token it issues. BENCH_ADAPTER=postgres in
// server.mjs.
//
// Every model (AccessToken, RefreshToken, ClientCredentials, Grant, Session,
// Interaction, ...) shares one table keyed by (id, type), type being the model
// name oidc-provider constructs the adapter with. The payload is kept whole as
// jsonb; the columns beside it are what the adapter looks things up by:
// grant_id (revokeByGrantId), uid (findByUid, sessions), user_code
// (findByUserCode, device codes), expires_at and consumed_at.
//
// Semantics, as oidc-provider 9 documents its Adapter:
// - upsert(id, payload, expiresIn) creates or replaces the entry; expiresIn is
//   seconds from now (absent: no expiry). A consumed entry stays consumed.
// - find / findByUid / findByUserCode return the stored payload, or undefined
//   when there is none or it has expired (expired rows are not returned; they
//   are left in the table, there is no sweeper). A consumed entry comes back
//   with `consumed` set to the consumption time (epoch seconds).
// - consume(id) marks the entry consumed; destroy(id) deletes it.
// - revokeByGrantId(grantId) deletes this model's entries of that grant
//   (oidc-provider calls it once per grant-bound model: AccessToken,
//   RefreshToken, AuthorizationCode, ...).
//
// Each call is one statement on a pooled connection outside any explicit
// transaction, so every write is committed (autocommit) before the promise
// resolves, as durable as the server's settings (fsync, synchronous_commit)
// make a commit. Statements are named, so each connection parses and plans
// them once.

import pg from 'pg';

const TABLE = 'oidc_payloads';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ${TABLE} (
  id text NOT NULL,
  type text NOT NULL,
  payload jsonb NOT NULL,
  grant_id text,
  user_code text,
  uid text,
  expires_at timestamptz,
  consumed_at timestamptz,
  PRIMARY KEY (id, type)
);
CREATE INDEX IF NOT EXISTS ${TABLE}_grant_id ON ${TABLE} (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${TABLE}_uid ON ${TABLE} (uid) WHERE uid IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${TABLE}_user_code ON ${TABLE} (user_code) WHERE user_code IS NOT NULL;
`;

const LIVE = '(expires_at IS NULL OR expires_at > now())';

const SQL = {
  upsert: `INSERT INTO ${TABLE} (id, type, payload, grant_id, user_code, uid, expires_at)
    VALUES ($1, $2, $3::jsonb, $4, $5, $6, now() + make_interval(secs => $7::float8))
    ON CONFLICT (id, type) DO UPDATE SET payload = EXCLUDED.payload,
      grant_id = EXCLUDED.grant_id, user_code = EXCLUDED.user_code, uid = EXCLUDED.uid,
      expires_at = EXCLUDED.expires_at`,
  find: `SELECT payload, consumed_at FROM ${TABLE} WHERE id = $1 AND type = $2 AND ${LIVE}`,
  findByUid: `SELECT payload, consumed_at FROM ${TABLE}
    WHERE uid = $1 AND type = $2 AND ${LIVE} LIMIT 1`,
  findByUserCode: `SELECT payload, consumed_at FROM ${TABLE}
    WHERE user_code = $1 AND type = $2 AND ${LIVE} LIMIT 1`,
  consume: `UPDATE ${TABLE} SET consumed_at = now() WHERE id = $1 AND type = $2`,
  destroy: `DELETE FROM ${TABLE} WHERE id = $1 AND type = $2`,
  revokeByGrantId: `DELETE FROM ${TABLE} WHERE grant_id = $1 AND type = $2`,
};

// Create the table and its indexes if they are missing. Run once, before the
// workers start (concurrent CREATE ... IF NOT EXISTS can still collide).
export async function createSchema(connectionString) {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(SCHEMA);
  } finally {
    await client.end();
  }
}

function row(result) {
  const found = result.rows[0];
  if (!found) return undefined;
  const { payload, consumed_at: consumedAt } = found;
  if (consumedAt) payload.consumed = Math.floor(consumedAt.getTime() / 1000);
  return payload;
}

// The Adapter class for oidc-provider's `adapter` setting, over one pool of
// `max` connections for this process.
export function postgresAdapter(connectionString, { max = 10 } = {}) {
  const pool = new pg.Pool({ connectionString, max });
  // A pooled connection that breaks while idle is dropped by the pool; without
  // a listener the error would end the process.
  pool.on('error', (err) => console.error('postgres pool:', err.message));

  const run = (name, values) => pool.query({ name: `oidc_${name}`, text: SQL[name], values });

  return class PostgresAdapter {
    constructor(model) {
      this.model = model;
    }

    async upsert(id, payload, expiresIn) {
      await run('upsert', [
        id,
        this.model,
        JSON.stringify(payload),
        payload.grantId ?? null,
        payload.userCode ?? null,
        payload.uid ?? null,
        typeof expiresIn === 'number' ? expiresIn : null,
      ]);
    }

    async find(id) {
      return row(await run('find', [id, this.model]));
    }

    async findByUid(uid) {
      return row(await run('findByUid', [uid, this.model]));
    }

    async findByUserCode(userCode) {
      return row(await run('findByUserCode', [userCode, this.model]));
    }

    async consume(id) {
      await run('consume', [id, this.model]);
    }

    async destroy(id) {
      await run('destroy', [id, this.model]);
    }

    async revokeByGrantId(grantId) {
      await run('revokeByGrantId', [grantId, this.model]);
    }
  };
}
