/**
 * PROXY protocol v1 (text) and v2 (binary) headers, as sent by HAProxy, AWS NLB, nginx and others ahead of the
 * client's own bytes (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt). Pure parsing plus a
 * bounded reader for a socket; the listener uses them before TLS or any protocol byte.
 */
import { Buffer } from 'node:buffer';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';

export interface ProxyHeader {
  /** Bytes the header took; whatever follows belongs to the client. */
  readonly length: number;
  /** The real client, or null for `LOCAL` (v2), `UNKNOWN` (v1) and non-TCP families: use the socket's own. */
  readonly source: { readonly address: string; readonly port: number } | null;
  readonly destination: { readonly address: string; readonly port: number } | null;
}

export class ProxyHeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProxyHeaderError';
  }
}

const V1_PREFIX = new TextEncoder().encode('PROXY ');
const V2_SIGNATURE = Uint8Array.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** v1 lines are at most 107 bytes including CRLF. */
export const V1_MAX = 107;
/** We accept v2 headers up to this size (address block plus TLVs); real proxies send far less. */
export const V2_MAX = 16 + 1024;

function startsWith(buf: Uint8Array, prefix: Uint8Array): 'yes' | 'no' | 'maybe' {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return 'no';
  return n === prefix.length ? 'yes' : 'maybe';
}

function port(text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new ProxyHeaderError(`bad port "${text}"`);
  const n = Number(text);
  if (n > 65535) throw new ProxyHeaderError(`bad port "${text}"`);
  return n;
}

function parseV1(buf: Uint8Array): ProxyHeader | null {
  let end = -1;
  for (let i = V1_PREFIX.length; i < Math.min(buf.length, V1_MAX) - 1; i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end < 0) {
    if (buf.length >= V1_MAX) throw new ProxyHeaderError('PROXY v1 line too long');
    return null;
  }
  const line = new TextDecoder('latin1').decode(buf.subarray(0, end));
  const parts = line.split(' ');
  const length = end + 2;
  if (parts[1] === 'UNKNOWN') return { length, source: null, destination: null };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) throw new ProxyHeaderError('malformed PROXY v1 line');
  const family = parts[1] === 'TCP4' ? 4 : 6;
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  if (isIP(src) !== family || isIP(dst) !== family) throw new ProxyHeaderError('bad address in PROXY v1 line');
  return { length, source: { address: src, port: port(sport) }, destination: { address: dst, port: port(dport) } };
}

function ipv4(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** RFC 5952 text form: lower case, no leading zeros, the longest run of zero groups (≥ 2) as `::`. */
export function formatIpv6(b: Uint8Array, at = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[at + 2 * i]! << 8) | b[at + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

function parseV2(buf: Uint8Array): ProxyHeader | null {
  if (buf.length < 16) return null;
  const version = buf[12]! >> 4;
  const command = buf[12]! & 0x0f;
  if (version !== 2) throw new ProxyHeaderError(`unsupported PROXY protocol version ${version}`);
  if (command > 1) throw new ProxyHeaderError(`unknown PROXY v2 command ${command}`);
  const family = buf[13]!;
  const bodyLength = (buf[14]! << 8) | buf[15]!;
  const length = 16 + bodyLength;
  if (length > V2_MAX) throw new ProxyHeaderError('PROXY v2 header too long');
  if (buf.length < length) return null;
  if (command === 0) return { length, source: null, destination: null }; // LOCAL: health check by the proxy itself
  if (family === 0x11) {
    if (bodyLength < 12) throw new ProxyHeaderError('PROXY v2 IPv4 address block too short');
    const v = new DataView(buf.buffer, buf.byteOffset + 16, 12);
    return { length, source: { address: ipv4(buf, 16), port: v.getUint16(8) }, destination: { address: ipv4(buf, 20), port: v.getUint16(10) } };
  }
  if (family === 0x21) {
    if (bodyLength < 36) throw new ProxyHeaderError('PROXY v2 IPv6 address block too short');
    const v = new DataView(buf.buffer, buf.byteOffset + 16, 36);
    return { length, source: { address: formatIpv6(buf, 16), port: v.getUint16(32) }, destination: { address: formatIpv6(buf, 32), port: v.getUint16(34) } };
  }
  return { length, source: null, destination: null }; // UNSPEC, UDP, unix sockets: keep the socket's address
}

/**
 * Parses a PROXY header at the start of `buf`. Returns null when more bytes are needed (never beyond V1_MAX /
 * V2_MAX), throws ProxyHeaderError when the bytes are not a valid header.
 */
export function parseProxyHeader(buf: Uint8Array): ProxyHeader | null {
  if (buf.length === 0) return null;
  const v2 = startsWith(buf, V2_SIGNATURE);
  if (v2 === 'yes') return parseV2(buf);
  const v1 = startsWith(buf, V1_PREFIX);
  if (v1 === 'yes') return parseV1(buf);
  if (v1 === 'maybe' || v2 === 'maybe') return null;
  throw new ProxyHeaderError('connection did not start with a PROXY protocol header');
}

/**
 * Reads the PROXY header from a paused socket without consuming anything after it (extra bytes are unshifted
 * back). Rejects on a bad header, on end of stream, or after `timeoutMs`.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolvePromise, rejectPromise) => {
    let buf: Uint8Array = new Uint8Array(0);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
    const reject = (err: Error) => {
      cleanup();
      rejectPromise(err);
    };
    const onEnd = () => reject(new ProxyHeaderError('connection ended before the PROXY header was complete'));
    const onError = (err: Error) => reject(err);
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        const next = new Uint8Array(buf.length + chunk.length);
        next.set(buf);
        next.set(chunk, buf.length);
        buf = next;
        let header: ProxyHeader | null;
        try {
          header = parseProxyHeader(buf);
        } catch (err) {
          reject(err as Error);
          return;
        }
        if (header) {
          cleanup();
          if (buf.length > header.length) socket.unshift(Buffer.from(buf.subarray(header.length)));
          resolvePromise(header);
          return;
        }
      }
    };
    const timer = setTimeout(() => reject(new ProxyHeaderError('timed out waiting for the PROXY header')), timeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.on('error', onError);
  });
}
