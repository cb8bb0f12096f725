/**
 * HTTP API test harness: the whole stack on SQLite in a temp directory, the API listening on loopback port 0,
 * and a small JSON client. By default the root token is ROOT_TOKEN and the loopback exemption is off, so
 * every request's authorization is what a remote client would get.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootTestApp } from './test-backend.ts';
import { startHttp } from '../../protocols/http.ts';
import type { HttpListener } from '../../protocols/http.ts';
import { resolveConfig } from '../../hooks/config.ts';
import type { ConfigInput } from '../../hooks/config.ts';
import { createLogger } from '../../hooks/log.ts';
import type { LogFields } from '../../hooks/log.ts';
import type { App } from '../../protocols/app.ts';

export const ROOT_TOKEN = 'root-secret-token';

export interface ApiResponse {
  status: number;
  body: any;
  headers: Headers;
}

export interface RequestOptions {
  body?: unknown;
  /** Access token; defaults to the root token; null sends none. */
  token?: string | null;
  /** Send the token as the accessToken query parameter instead of the header. */
  tokenInQuery?: boolean;
  /** A raw body (sent as given with this content type). */
  raw?: { type: string; data: string | Uint8Array };
}

export interface HttpTestApp {
  app: App;
  base: string;
  logs: LogFields[];
  listener: HttpListener;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  close(): Promise<void>;
}

export async function bootHttpTestApp(overrides: ConfigInput = {}): Promise<HttpTestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wd-http-'));
  const config = resolveConfig({
    dataDir,
    ...overrides,
    auth: { failedLogins: { delayMs: 0 }, ...(overrides.auth ?? {}) },
    api: { host: '127.0.0.1', port: 0, accessToken: ROOT_TOKEN, loopbackIsRoot: false, ...(overrides.api ?? {}) },
    imap: { enabled: false, ...(overrides.imap ?? {}) },
    pop3: { enabled: false, ...(overrides.pop3 ?? {}) },
    lmtp: { enabled: false, ...(overrides.lmtp ?? {}) },
  });
  const logs: LogFields[] = [];
  const log = createLogger({ level: 'info', format: 'json', sink: (_line, entry) => logs.push(entry) });
  const app = await bootTestApp(config, log);
  const listener = await startHttp(app);
  const base = `http://127.0.0.1:${listener.port}`;
  const request = async (method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> => {
    const token = options.token === undefined ? ROOT_TOKEN : options.token;
    const headers: Record<string, string> = {};
    let url = base + path;
    if (token !== null) {
      if (options.tokenInQuery) url += (path.includes('?') ? '&' : '?') + 'accessToken=' + encodeURIComponent(token);
      else headers['x-access-token'] = token;
    }
    let body: string | Uint8Array | undefined;
    if (options.raw) {
      headers['content-type'] = options.raw.type;
      body = options.raw.data;
    } else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    const res = await fetch(url, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    app,
    base,
    logs,
    listener,
    request,
    close: async () => {
      await listener.close();
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
