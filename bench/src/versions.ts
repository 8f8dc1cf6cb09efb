import { join } from 'node:path';
import { repoRoot } from './paths.js';
import { exec } from './util/exec.js';

/** The version of `module` built into a Go binary (`go version -m`), or "unknown". */
export async function goModuleVersion(binary: string, module: string): Promise<string> {
  try {
    const { stdout } = await exec('go', ['version', '-m', binary]);
    const line = stdout.split('\n').find((l) => l.trim().split(/\s+/)[1] === module && /^\s+(mod|dep)\s/.test(l));
    return line?.trim().split(/\s+/)[2] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function nginxVersion(): Promise<string> {
  const { stderr } = await exec('nginx', ['-v']);
  return /nginx\/(\S+)/.exec(stderr)?.[1] ?? 'unknown';
}

export async function wrkVersion(): Promise<string> {
  const { stdout, stderr } = await exec('wrk', ['-v']);
  return /^wrk (\S+)/m.exec(stdout + stderr)?.[1] ?? 'unknown';
}

/**
 * The commit the registry was built from, and the registry source files that differ
 * from it (the working tree is shared, so a build can include uncommitted work).
 */
export interface WharfRevision {
  commit: string;
  uncommitted: string[];
}

export async function wharfRevision(): Promise<WharfRevision> {
  const git = (args: string[]) => exec('git', ['-C', repoRoot, ...args]);
  const commit = (await git(['rev-parse', '--short=12', 'HEAD'])).stdout.trim() || 'unknown';
  const status = (await git(['status', '--porcelain', '--', join('registry', 'src')])).stdout;
  const uncommitted = status
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(3));
  return { commit, uncommitted };
}
