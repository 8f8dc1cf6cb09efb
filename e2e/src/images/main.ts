// `make images`: builds the registry and operator images as OCI image layouts, without Docker.
//   node dist/e2e/src/images/main.js [--out dist/images] [--cache .tools/images]
// Prints each image's manifest digest; dist/images/<name> can then be pushed with
// `skopeo copy oci:dist/images/wharf-registry:0.1.0 docker://<your registry>/wharf-registry:0.1.0`.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildImages } from './build.js';

const root = resolve(import.meta.dirname, '../../../..');
const { values } = parseArgs({
  options: {
    out: { type: 'string', default: join(root, 'dist/images') },
    cache: { type: 'string', default: join(root, '.tools/images') },
  },
});

const started = Date.now();
const images = await buildImages({ root, cacheDir: resolve(values.cache!), outDir: resolve(values.out!), log: (line) => console.log(line) });
for (const image of images) console.log(`${image.spec.name} ${image.manifest.digest} ${image.layout} (${image.spec.reference})`);
console.log(`make images: ${((Date.now() - started) / 1000).toFixed(1)} s`);
