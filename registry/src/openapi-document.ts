// Writes the management API's OpenAPI document, as the running registry serves it at
// /api/v1/openapi.json, to a file (or stdout). The operator's typed client is generated from it
// (`make api-client`); a test fails when the committed copy is stale.
//   node dist/registry/src/openapi-document.js [out.json]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from './app.js';
import { defaultJobsConfig, loadConfig } from './config.js';

/** Builds the app on a throwaway embedded database and returns its OpenAPI document. */
export async function managementOpenApiDocument(): Promise<unknown> {
  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-openapi-'));
  try {
    const config = loadConfig(['--data-dir', dataDir, '--log-level', 'error'], {});
    const app = await buildApp({ config: { ...config, jobs: { ...defaultJobsConfig(), worker: false } } });
    try {
      await app.ready();
      return app.swagger();
    } finally {
      await app.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Stable text: 2-space JSON and a final newline. */
export function openApiText(document: unknown): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const text = openApiText(await managementOpenApiDocument());
  if (process.argv[2]) await writeFile(process.argv[2], text);
  else process.stdout.write(text);
}
