/** A loopback listener with test-sized limits (per-IP 10, idle 60 s, no PROXY), for protocol tests. */
import { startTcpListener } from '../../protocols/net/listener.ts';
import type { TcpListener, TcpListenerOptions } from '../../protocols/net/listener.ts';

export function testListener(
  base: Pick<TcpListenerOptions, 'name' | 'tls' | 'log' | 'onConnection'>,
  options: Partial<TcpListenerOptions> = {},
): Promise<TcpListener> {
  return startTcpListener({
    host: '127.0.0.1',
    port: 0,
    implicitTls: false,
    proxyProtocol: false,
    maxConnectionsPerIp: 10,
    idleTimeoutSeconds: 60,
    ...base,
    ...options,
  });
}
