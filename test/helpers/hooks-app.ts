/**
 * Builds an App for hook/plugin tests: fake storage, a fake ingest (no MIME parsing: the whole message is one
 * inline segment, and the body is also staged as a blob so discard can be observed), a log sink, and a
 * password check where the stored hash is "plain:<password>".
 */
import { createApp } from '../../protocols/app.ts';
import type { App } from '../../protocols/app.ts';
import { resolveConfig } from '../../hooks/config.ts';
import type { ConfigInput } from '../../hooks/config.ts';
import { createLogger } from '../../hooks/log.ts';
import type { LogFields, LogLevel } from '../../hooks/log.ts';
import type { PluginRegistry } from '../../hooks/host.ts';
import type { IngestedMessage, MimeNode, StoragePorts } from '../../storage/ports.ts';
import { createFakeStorage } from './fake-hooks-storage.ts';
import type { FakeStorage } from './fake-hooks-storage.ts';
import { collectBytes as readAll } from '../../storage/bytes.ts';
import { mimeNode } from '../../storage/mime/splitter.ts';
export { readAll };


/** A stand-in for storage/mime's ingestMessage: counts calls, honours maxSize with a TOOBIG error. */
export function fakeIngest(storage: StoragePorts, options: { maxSize?: number } = {}) {
  const calls: Uint8Array[] = [];
  const ingest = async (source: AsyncIterable<Uint8Array>): Promise<IngestedMessage> => {
    const bytes = await readAll(source);
    if (options.maxSize !== undefined && bytes.length > options.maxSize) {
      throw Object.assign(new Error('message too big'), { code: 'TOOBIG' });
    }
    calls.push(bytes);
    const writer = storage.blobs.stage();
    await writer.write(bytes);
    const blob = await writer.finish();
    const text = new TextDecoder().decode(bytes);
    const subject = /^Subject: (.*)$/m.exec(text)?.[1]?.trim() ?? '';
    const mime: MimeNode = mimeNode({ bodyEnd: bytes.length, size: bytes.length, lines: text.split('\n').length });
    return {
      size: bytes.length,
      content: { inline: bytes, segments: [{ length: bytes.length }] },
      mime,
      envelope: { date: null, subject, from: null, sender: null, replyTo: null, to: null, cc: null, bcc: null, inReplyTo: null, messageId: null },
      messageId: null,
      references: [],
      subject,
      headerDate: null,
      hasAttachments: false,
      searchText: text,
      searchHeaders: { subject, from: null, to: null, cc: null, bcc: null, headers: `subject: ${subject}` },
      preview: '',
      blobs: [blob],
      sha256: blob.hash,
    };
  };
  return { ingest, calls };
}

export interface TestApp {
  app: App;
  storage: FakeStorage;
  logs: LogFields[];
  ingestCalls: Uint8Array[];
}

export async function makeApp(
  options: { config?: ConfigInput; registry?: PluginRegistry; level?: LogLevel; storage?: FakeStorage; maxSize?: number } = {},
): Promise<TestApp> {
  const logs: LogFields[] = [];
  const log = createLogger({ level: options.level ?? 'debug', format: 'json', sink: (_line, entry) => logs.push(entry) });
  // no answer delay after a failed login (plugins/login-limits.ts) unless a test asks for one
  const input = options.config ?? {};
  const config = resolveConfig({ ...input, auth: { ...input.auth, failedLogins: { delayMs: 0, ...input.auth?.failedLogins } } });
  const storage = options.storage ?? createFakeStorage();
  const { ingest, calls } = fakeIngest(storage, { maxSize: options.maxSize });
  const app = await createApp({
    config,
    log,
    storage,
    ingest,
    checkCredentials: async (login, password) => {
      const user = await storage.users.getByUsername(login.trim().toLowerCase());
      return user && !user.disabled && user.passwordHash === `plain:${password}` ? user : null;
    },
    registry: options.registry ?? {},
  });
  return { app, storage, logs, ingestCalls: calls };
}

export const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
export const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

export function chunks(...parts: string[]): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (const p of parts) yield encode(p);
  })();
}
