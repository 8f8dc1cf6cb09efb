// Which redirect and token-realm targets count as this machine or a private network (remote/internal-hosts.ts).
import { describe, expect, it } from 'vitest';
import { isInternalHost } from '../../src/remote/internal-hosts.js';

describe('isInternalHost', () => {
  it('knows loopback, private, link-local and carrier-grade NAT addresses in every spelling a URL gives them, and localhost', () => {
    const hostOf = (url: string) => new URL(url).hostname;
    for (const url of ['http://127.0.0.1/', 'http://2130706433/', 'http://0x7f.1/', 'http://localhost:5000/', 'http://a.localhost/', 'http://10.1.2.3/', 'http://172.20.0.1/', 'http://192.168.1.1/', 'http://169.254.169.254/latest/', 'http://100.64.0.1/', 'http://0.0.0.0/', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://[fd00::1]/', 'http://[fe80::1]/', 'http://[::]/']) {
      expect(isInternalHost(hostOf(url)), url).toBe(true);
    }
    for (const url of ['https://registry-1.docker.io/', 'https://8.8.8.8/', 'http://172.32.0.1/', 'http://[2001:db8::1]/', 'https://auth.docker.io/token', 'http://localhost.example.com/']) {
      expect(isInternalHost(hostOf(url)), url).toBe(false);
    }
  });
});
