import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('trusted proxies and the token realm', () => {
  it('trusts no proxy by default', () => {
    expect(loadConfig([], {}).trustedProxies).toEqual([]);
  });

  it('reads trusted proxies (addresses and CIDR ranges, IPv4 and IPv6) from the environment or the YAML file', () => {
    expect(loadConfig([], { WHARF_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.5,::1 , fd00::/8' }).trustedProxies).toEqual(['10.0.0.0/8', '192.168.1.5', '::1', 'fd00::/8']);
    const file = join(tmpdir(), `wharf-config-proxies-${process.pid}.yaml`);
    writeFileSync(file, 'trustedProxies:\n  - 10.1.2.3\n  - 172.16.0.0/12\n');
    expect(loadConfig(['--config', file], {}).trustedProxies).toEqual(['10.1.2.3', '172.16.0.0/12']);
    writeFileSync(file, 'trustedProxies: 10.1.2.3,10.1.2.4\n');
    expect(loadConfig(['--config', file], {}).trustedProxies).toEqual(['10.1.2.3', '10.1.2.4']);
    expect(loadConfig(['--config', file], { WHARF_TRUSTED_PROXIES: '127.0.0.1' }).trustedProxies).toEqual(['127.0.0.1']);
  });

  it.each(['proxy.example.com', '10.0.0.0/33', '10.0.0.1/x', '::1/129', '300.1.1.1', 'loopback'])('refuses the trusted proxy entry %j', (entry) => {
    expect(() => loadConfig([], { WHARF_TRUSTED_PROXIES: entry })).toThrow(ConfigError);
  });

  it('accepts only an absolute http(s) URL as the realm', () => {
    expect(loadConfig([], { WHARF_AUTH_REALM: 'https://registry.example.com/token' }).auth.realm).toBe('https://registry.example.com/token');
    for (const bad of ['registry.example.com/token', 'javascript:alert(1)', 'https://r.example/"token', 'https://r.example/tok en', 'https://r.example/\\token']) {
      expect(() => loadConfig([], { WHARF_AUTH_REALM: bad }), bad).toThrow(ConfigError);
    }
  });
});
