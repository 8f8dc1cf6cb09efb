// The lab's pause image: one static binary as /pause, its entrypoint, as an OCI layout.
//   node dist/e2e/src/images/pause.js <static binary> <reference> <layout dir> [cache dir]
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Blobs, writeImage } from './build.js';
import { writeLayer } from './tar-layer.js';

const [binary, reference, layout, cache = join(resolve(import.meta.dirname, '../../../..'), '.tools/images')] = process.argv.slice(2);
if (!binary || !reference || !layout) throw new Error('usage: pause.js <static binary> <reference> <layout dir> [cache dir]');
const blobs = new Blobs(resolve(cache));
const layer = await writeLayer([{ path: '/pause', type: 'file', mode: 0o755, content: readFileSync(binary) }], blobs.dir);
const image = writeImage(blobs, resolve(layout), reference, { User: '65535:65535', WorkingDir: '/', Env: [], Entrypoint: ['/pause'], Labels: {} }, [{ ...layer, description: 'pause' }]);
console.log(`${reference} ${image.manifest.digest} ${image.layout}`);
