/**
 * Client addresses as counting keys, shared by the failed-login limits (plugins/login-limits.ts) and the
 * password-check queue's fairness (plugins/storage.ts): one address, and the network it belongs to — the /24 of
 * an IPv4 address, the /64 of an IPv6 one (the block one subscriber usually holds, so rotating addresses
 * within it changes nothing). IPv4-mapped IPv6 addresses count as IPv4. Empty (internal callers) gives null.
 */
import { isIP } from 'node:net';

/** The eight groups of an IPv6 address, as lowercase hex without leading zeros; null when it is not IPv6. */
function ipv6Groups(a: string): string[] | null {
  if (isIP(a) !== 6) return null;
  const [head = '', tail = ''] = a.split('::');
  const left = head ? head.split(':') : [];
  const right = a.includes('::') && tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...left, ...new Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return groups.map((g) => (g.includes('.') ? g : parseInt(g || '0', 16).toString(16)));
}

function normalized(address: string): { v4: string } | { v6: string[] } | { other: string } | null {
  const a = address.trim().toLowerCase();
  if (!a) return null;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return { v4: mapped[1]! };
  if (isIP(a) === 4) return { v4: a };
  const v6 = ipv6Groups(a);
  return v6 ? { v6 } : { other: a };
}

/** One client address in canonical form: `ip:1.2.3.4`, `ip6:2001:db8:0:0:0:0:0:1`; null without an address. */
export function clientIp(address: string): string | null {
  const n = normalized(address);
  if (!n) return null;
  if ('v4' in n) return `ip:${n.v4}`;
  if ('v6' in n) return `ip6:${n.v6.join(':')}`;
  return `ip:${n.other}`;
}

/** The client's network: `net:1.2.3.0/24`, `net6:2001:db8:1:2::/64`; null without an address. */
export function clientNetwork(address: string): string | null {
  const n = normalized(address);
  if (!n) return null;
  if ('v4' in n) return `net:${n.v4.split('.').slice(0, 3).join('.')}.0/24`;
  if ('v6' in n) return `net6:${n.v6.slice(0, 4).join(':')}::/64`;
  return `net:${n.other}`;
}
