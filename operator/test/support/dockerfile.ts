// A Dockerfile built without Docker, so that a test can catch a build that fails: each stage's
// instructions are performed in a directory that stands for the stage's filesystem. COPY copies
// from the build context (minus what <Dockerfile>.dockerignore excludes) or from an earlier
// stage, WORKDIR and ENV set the working directory and environment of what follows, and RUN runs
// the very command line of the Dockerfile with `sh -c` in that directory, with the host's tools
// standing for the base image's (the same Node.js major is not guaranteed). The last stage's RUN
// lines are not run: they prepare the image's own filesystem as root (e.g. a volume's
// directory), which has no place on the host; they are returned for the caller to judge.
//
// Like Docker's build cache, a RUN whose instruction chain and copied inputs are unchanged reuses
// the stage's filesystem from an earlier build (kept under `cacheDir`), so `npm ci` runs again
// only when package.json or package-lock.json change. Filesystems are copied as hard links (a
// node_modules tree is tens of thousands of files); a cache entry is used only while every file
// still has the mode, size and mtime it had when it was stored. A later step that wrote a linked
// file in place (npm rewrites its lock files so) costs one rebuild of the entry, never a wrong
// result, and from then on that file is copied rather than linked.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  base: string;
  name?: string;
  instructions: Instruction[];
}

export interface Image {
  /** The last stage's filesystem. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  user?: string;
  volumes: string[];
  bases: string[];
  /** The last stage's RUN command lines, not run (see above). */
  skippedRuns: string[];
  /** Cache entries this build used or made. */
  cacheKeys: Set<string>;
}

const KEYWORDS = new Set(['FROM', 'WORKDIR', 'COPY', 'RUN', 'ENV', 'USER', 'EXPOSE', 'VOLUME', 'ENTRYPOINT', 'CMD']);

export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const first = i + 1;
    let line = lines[i]!;
    if (!line.trim() || line.trim().startsWith('#')) continue;
    // A trailing backslash continues the instruction; comment lines inside it are dropped.
    while (line.trimEnd().endsWith('\\') && i + 1 < lines.length) {
      line = line.trimEnd().slice(0, -1);
      const next = lines[++i]!;
      if (!next.trim().startsWith('#')) line += `\n${next}`;
    }
    const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${first}: cannot parse ${JSON.stringify(line)}`);
    const keyword = m[1]!.toUpperCase();
    if (!KEYWORDS.has(keyword)) throw new Error(`Dockerfile line ${first}: ${keyword} is not supported by this emulation`);
    const args = m[2]!.replace(/\n/g, ' ').trim();
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from) throw new Error(`Dockerfile line ${first}: cannot parse FROM ${args}`);
      stages.push({ base: from[1]!, ...(from[2] && { name: from[2] }), instructions: [] });
      continue;
    }
    if (stages.length === 0) throw new Error(`Dockerfile line ${first}: ${keyword} before FROM`);
    stages.at(-1)!.instructions.push({ keyword, args, line: first });
  }
  return stages;
}

/** The environment the last stage's ENV lines give the image (what a container starts with, before its own env). */
export function imageEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of parseDockerfile(text).at(-1)?.instructions ?? []) if (ins.keyword === 'ENV') Object.assign(env, envPairs(ins.args));
  return env;
}

/** `["a", "b"]` (exec form) or a shell command line (shell form). */
function commandOf(args: string): string[] {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : ['/bin/sh', '-c', args];
}

function envPairs(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const [key, ...value] = args.split(/\s+/);
    out[key!] = value.join(' ');
    return out;
  }
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    out[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
  }
  return out;
}

/** A .dockerignore as Docker reads it: patterns relative to the context root; a match excludes a path and all below it. */
function ignoreMatcher(file: string | undefined): (path: string) => boolean {
  if (!file || !existsSync(file)) return () => false;
  const patterns = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((p) => {
      if (p.startsWith('!')) throw new Error(`${file}: exception patterns (${p}) are not supported by this emulation`);
      const clean = posix.normalize(p.replace(/^\.?\//, ''));
      const source = clean.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\0').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\0/g, '.*');
      return new RegExp(`^${source}(?:/.*)?$`);
    });
  return (path) => patterns.some((re) => re.test(path));
}

/** Every file below `dir` (relative paths, sorted), minus the ignored ones. */
function filesBelow(contextRoot: string, rel: string, ignored: (path: string) => boolean): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(contextRoot, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = posix.join(rel, entry.name);
    if (ignored(path)) continue;
    if (entry.isDirectory()) out.push(...filesBelow(contextRoot, path, ignored));
    else if (entry.isFile()) out.push(path);
    else throw new Error(`${path}: only files and directories can be copied by this emulation`);
  }
  return out;
}

/** Every file below `dir` with its mode, size and mtime: what a cache entry must still match. */
function fingerprint(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const path = join(rel, entry.name);
      if (entry.isDirectory()) walk(path);
      else {
        const st = lstatSync(join(dir, path), { bigint: true });
        out.set(path, `${st.mode} ${st.size} ${st.mtimeNs}`);
      }
    }
  };
  walk('');
  return out;
}

/**
 * A stage filesystem kept after a RUN, shared by hard links. `<key>.files` is its fingerprint;
 * `<key>.copy` lists the files some later step wrote in place: those are copied, not linked.
 */
class CacheEntry {
  constructor(private readonly path: string) {}

  private get copied(): string[] {
    return existsSync(`${this.path}.copy`) ? readFileSync(`${this.path}.copy`, 'utf8').split('\n').filter(Boolean) : [];
  }

  /** Fills `root` from the entry; false (and the entry dropped) when a file changed since it was stored. */
  async restore(root: string): Promise<boolean> {
    if (!existsSync(this.path)) return false;
    const stored = new Map(Object.entries(JSON.parse(readFileSync(`${this.path}.files`, 'utf8')) as Record<string, string>));
    const now = fingerprint(this.path);
    const changed = [...stored].filter(([file, print]) => now.get(file) !== print).map(([file]) => file);
    if (changed.length > 0 || now.size !== stored.size) {
      writeFileSync(`${this.path}.copy`, [...new Set([...this.copied, ...changed])].join('\n'));
      rmSync(this.path, { recursive: true, force: true });
      return false;
    }
    rmSync(root, { recursive: true, force: true });
    await linkTree(this.path, root, this.copied);
    return true;
  }

  async store(root: string): Promise<void> {
    const temp = `${this.path}.tmp-${process.pid}`;
    await linkTree(root, temp, this.copied);
    writeFileSync(`${this.path}.files`, JSON.stringify(Object.fromEntries(fingerprint(temp))));
    renameSync(temp, this.path);
  }
}

/** Copies a tree as hard links (same filesystem), keeping modes and times; the files in `copy` as real copies. */
async function linkTree(from: string, to: string, copy: string[]): Promise<void> {
  await run('cp', ['-al', from, to]);
  for (const file of copy) {
    if (!existsSync(join(from, file))) continue;
    rmSync(join(to, file));
    await run('cp', ['-a', join(from, file), join(to, file)]);
  }
}

const hash = (...parts: (string | Buffer)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
};

export interface BuildOptions {
  dockerfile: string;
  context: string;
  /** Where the stages' filesystems are made (a fresh directory, on the filesystem of cacheDir). */
  workDir: string;
  /** Kept between builds; entries not in an Image's cacheKeys may be removed. */
  cacheDir: string;
  /** Added to the environment of RUN commands (e.g. npm settings of the machine). */
  runEnv?: Record<string, string>;
  /** Told what each RUN did and how long it took. */
  log?: (line: string) => void;
}

export async function buildDockerfile(options: BuildOptions): Promise<Image> {
  const stages = parseDockerfile(readFileSync(options.dockerfile, 'utf8'));
  const ignored = ignoreMatcher(`${options.dockerfile}.dockerignore`);
  const built = new Map<string, { root: string; key: string }>();
  const cacheKeys = new Set<string>();
  mkdirSync(options.cacheDir, { recursive: true });
  let image: Image | undefined;

  for (const [index, stage] of stages.entries()) {
    const last = index === stages.length - 1;
    const root = join(options.workDir, `stage-${index}`);
    mkdirSync(root, { recursive: true });
    const state: Image = { root, workdir: '/', env: {}, entrypoint: [], cmd: [], volumes: [], bases: stages.map((s) => s.base), skippedRuns: [], cacheKeys };
    let key = hash('FROM', stage.base);
    const at = (path: string) => join(root, posix.resolve(state.workdir, path));

    for (const ins of stage.instructions) {
      const where = `${options.dockerfile}:${ins.line} ${ins.keyword} ${ins.args}`;
      key = hash(key, ins.keyword, ins.args);
      switch (ins.keyword) {
        case 'WORKDIR':
          state.workdir = posix.resolve(state.workdir, ins.args);
          mkdirSync(join(root, state.workdir), { recursive: true });
          break;
        case 'ENV':
          Object.assign(state.env, envPairs(ins.args));
          break;
        case 'USER':
          state.user = ins.args;
          break;
        case 'EXPOSE':
          break;
        case 'VOLUME':
          state.volumes.push(...(ins.args.startsWith('[') ? (JSON.parse(ins.args) as string[]) : ins.args.split(/\s+/)));
          break;
        case 'ENTRYPOINT':
          state.entrypoint = commandOf(ins.args);
          break;
        case 'CMD':
          state.cmd = commandOf(ins.args);
          break;
        case 'COPY': {
          const tokens = ins.args.split(/\s+/);
          const flags = tokens.filter((t) => t.startsWith('--'));
          const [dest, ...sourcesReversed] = tokens.filter((t) => !t.startsWith('--')).reverse();
          const sources = sourcesReversed.reverse();
          const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
          if (flags.some((f) => !f.startsWith('--from='))) throw new Error(`${where}: only --from is supported by this emulation`);
          if (!dest || sources.length === 0) throw new Error(`${where}: COPY needs a source and a destination`);
          const intoDir = dest.endsWith('/') || sources.length > 1;
          const target = at(dest);
          const source = from === undefined ? undefined : built.get(from);
          if (from !== undefined && !source) throw new Error(`${where}: no earlier stage named ${from}`);
          for (const src of sources) {
            if (source) {
              key = hash(key, source.key);
              const path = join(source.root, posix.resolve('/', src));
              if (!existsSync(path)) throw new Error(`${where}: ${src} does not exist in stage ${from}`);
              if (statSync(path).isDirectory()) {
                mkdirSync(target, { recursive: true });
                await run('cp', ['-al', `${path}/.`, target]);
              } else {
                const dst = intoDir ? join(target, basename(src)) : target;
                mkdirSync(join(dst, '..'), { recursive: true });
                await run('cp', ['-al', path, dst]);
              }
              continue;
            }
            const rel = posix.normalize(src).replace(/\/$/, '');
            const path = join(options.context, rel);
            if (!existsSync(path) || ignored(rel)) throw new Error(`${where}: ${src} is not in the build context`);
            if (statSync(path).isDirectory()) {
              for (const file of filesBelow(options.context, rel, ignored)) {
                const dst = join(target, posix.relative(rel, file));
                mkdirSync(join(dst, '..'), { recursive: true });
                copyFileSync(join(options.context, file), dst);
                key = hash(key, file, readFileSync(join(options.context, file)));
              }
            } else {
              const dst = intoDir ? join(target, basename(rel)) : target;
              mkdirSync(join(dst, '..'), { recursive: true });
              copyFileSync(path, dst);
              key = hash(key, rel, readFileSync(path));
            }
          }
          break;
        }
        case 'RUN': {
          if (last) {
            state.skippedRuns.push(ins.args);
            break;
          }
          cacheKeys.add(key);
          const entry = new CacheEntry(join(options.cacheDir, key));
          const started = Date.now();
          if (await entry.restore(root)) {
            options.log?.(`RUN ${ins.args}: cached (${Date.now() - started} ms)`);
            break;
          }
          const [cmd, ...args] = commandOf(ins.args);
          try {
            await run(cmd!, args, {
              cwd: join(root, state.workdir),
              env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...options.runEnv, ...state.env },
              maxBuffer: 64 * 1024 * 1024,
            });
          } catch (err) {
            const e = err as { stdout?: string; stderr?: string; message: string };
            throw new Error(`${where} failed: ${e.message}\n--- output ---\n${`${e.stdout ?? ''}${e.stderr ?? ''}`.slice(-8000)}`);
          }
          const ran = Date.now();
          await entry.store(root);
          options.log?.(`RUN ${ins.args}: ${ran - started} ms, cached in ${Date.now() - ran} ms`);
          break;
        }
      }
    }
    if (stage.name) built.set(stage.name, { root, key });
    built.set(String(index), { root, key });
    image = state;
  }
  if (!image) throw new Error(`${options.dockerfile}: no stage`);
  return image;
}

/** Removes cache entries that no build in `keep` used. */
export function pruneCache(cacheDir: string, keep: Set<string>): void {
  if (!existsSync(cacheDir)) return;
  for (const entry of readdirSync(cacheDir)) if (!keep.has(entry.replace(/\.(files|copy)$/, ''))) rmSync(join(cacheDir, entry), { recursive: true, force: true });
}

/** Runs the image's ENTRYPOINT and CMD (or `args` instead of CMD) in its working directory, with its environment and `env` over it. */
export function startImage(image: Image, options: { env?: Record<string, string>; args?: string[] } = {}): { child: ChildProcess; output(): string; exited: Promise<number | null> } {
  const [cmd, ...rest] = [...image.entrypoint, ...(options.args ?? image.cmd)];
  if (!cmd) throw new Error('the image has neither ENTRYPOINT nor CMD');
  const child = spawn(cmd, rest, { cwd: join(image.root, image.workdir), env: { PATH: process.env.PATH ?? '', ...image.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-65536));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}
