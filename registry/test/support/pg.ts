import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Creates an empty database on the shared test server and returns its DSN. */
export async function createTestDatabase(adminUrl: string, prefix = 'wharf'): Promise<string> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
