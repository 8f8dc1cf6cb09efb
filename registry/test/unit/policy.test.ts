import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { permissionTable } from '../../src/auth/permission-table.js';
import { can, permissionsIn, type Principal } from '../../src/auth/policy.js';
import { parseScope, parseScopes } from '../../src/auth/scopes.js';

const user = (roles: [string, string][], admin = false): Principal => ({ kind: 'user', id: 'u', name: 'u', admin, roles: new Map(roles) as never });

describe('policy', () => {
  it('the README documents the permission matrix exactly as the policy module defines it', async () => {
    const readme = await readFile('README.md', 'utf8');
    expect(readme).toContain(permissionTable());
  });

  it('a project robot only acts in its own project, even with a wildcard namespace', () => {
    const robot: Principal = { kind: 'robot', id: 'r', name: 'robot$a+x', project: 'a', permissions: [{ namespace: '*', access: [{ resource: 'repository', action: 'push' }] }] };
    expect(can(robot, { name: 'b', public: false }, 'repository:push')).toBe(false);
  });

  it('robots cannot be given permissions outside the grantable list', () => {
    const robot: Principal = { kind: 'robot', id: 'r', name: 'robot$x', project: null, permissions: [{ namespace: 'p', access: [{ resource: 'member', action: 'write' }] }] };
    expect(permissionsIn(robot, { name: 'p', public: false }).has('member:write')).toBe(false);
  });

  it('membership in one project gives nothing in another', () => {
    expect(can(user([['a', 'projectAdmin']]), { name: 'b', public: false }, 'repository:pull')).toBe(false);
    expect(can(user([], true), { name: 'b', public: false }, 'project:delete')).toBe(true);
  });
});

describe('scopes', () => {
  it('parses repository, catalog and management scopes and drops unknown ones', () => {
    expect(parseScope('repository:a/b:pull,push')).toEqual({ type: 'repository', name: 'a/b', actions: ['pull', 'push'] });
    expect(parseScope('repository(plugin):a:pull')).toEqual({ type: 'repository', name: 'a', actions: ['pull'] });
    expect(parseScope('registry:catalog:*')).toEqual({ type: 'registry', name: 'catalog', actions: ['*'] });
    expect(parseScope('registry:management:*')).toEqual({ type: 'registry', name: 'management', actions: ['*'] });
    expect(parseScope('registry:management:pull')).toEqual({ type: 'registry', name: 'management', actions: [] });
    expect(parseScope('registry:other:*')).toBeUndefined();
    expect(parseScope('repository:a:pull,fly')).toEqual({ type: 'repository', name: 'a', actions: ['pull'] });
    expect(parseScopes(['repository:a:pull repository:b:push', 'garbage'])).toHaveLength(2);
  });
});
