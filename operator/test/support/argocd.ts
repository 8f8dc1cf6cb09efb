// Runs config/argocd/health.lua the way Argo CD does (the object as the global `obj`, the script's
// return value as the health), under Debian's lua5.1: Argo CD's gopher-lua implements Lua 5.1.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './kube.js';

function luaString(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(byte);
    if (byte >= 0x20 && byte < 0x7f && ch !== '"' && ch !== '\\') out += ch;
    else out += `\\${byte}`;
  }
  return out + '"';
}

export function toLua(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return luaString(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `{${value.map(toLua).join(', ')}}`;
  return `{${Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `[${luaString(k)}] = ${toLua(v)}`)
    .join(', ')}}`;
}

export function argoHealth(obj: unknown): { status: string; message: string } {
  const script = join(ROOT, 'config/argocd/health.lua');
  const program = `obj = ${toLua(obj)}
local check = assert(loadfile(${luaString(script)}))
local hs = check()
io.write(hs.status, "\\n", hs.message or "")`;
  const out = execFileSync('lua5.1', ['-e', program], { encoding: 'utf8' });
  const nl = out.indexOf('\n');
  return { status: out.slice(0, nl), message: out.slice(nl + 1) };
}
