/**
 * A real SMTP server (npm smtp-server) on a loopback port, standing in for the outbound relay: it records every
 * message it accepts (envelope and raw text) before answering 250, so a sender that got its answer can look.
 */
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { Buffer } from 'node:buffer';

export interface RelayedMessage {
  /** Envelope sender; '' for the null sender. */
  readonly from: string;
  readonly to: string[];
  readonly raw: string;
}

export interface TestRelay {
  readonly port: number;
  readonly messages: RelayedMessage[];
  close(): Promise<void>;
}

export async function startTestRelay(): Promise<TestRelay> {
  const messages: RelayedMessage[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const mailFrom = session.envelope.mailFrom;
        messages.push({
          from: mailFrom ? mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  return {
    port,
    messages,
    close: () => (closed ??= new Promise<void>((resolve) => server.close(() => resolve()))),
  };
}

/** The value of a header in a raw message (first occurrence, unfolded), or null. */
export function rawHeader(raw: string, name: string): string | null {
  const head = raw.split(/\r?\n\r?\n/, 1)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head);
  return m ? m[1]!.trim() : null;
}
