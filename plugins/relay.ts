/**
 * Outbound mail through the relay in `delivery.relay` (nodemailer's SMTP transport), shared by the forwarding,
 * autoreply and submission plugins; not a plugin itself.
 *
 * Sending never holds up a delivery: the plugins prepare the message while the delivery is still running (its
 * source may be gone once the LMTP reply is out), then hand the send to `OutboundQueue`, which runs it in the
 * background and logs the outcome. `settled()` waits for what is in flight (tests, shutdown); `close()` waits a
 * bounded time, then closes the transport.
 */
import { Buffer } from 'node:buffer';
import nodemailer from 'nodemailer';
import type { Config } from '../hooks/config.ts';
import type { Logger } from '../hooks/log.ts';

export type RelayConfig = Config['delivery']['relay'];

/** One message for the relay. `from: ''` is the null sender `<>`. */
export type OutboundMail =
  | { readonly from: string; readonly to: readonly string[]; readonly raw: Uint8Array }
  | {
      readonly from: string;
      readonly to: readonly string[];
      /** A message nodemailer composes (autoreplies). */
      readonly compose: {
        from: string;
        to: string;
        subject: string;
        text?: string;
        html?: string;
        inReplyTo?: string;
        references?: string[];
        headers: Record<string, string>;
      };
    };

/** What the relay said when it took a message. */
export interface RelayReceipt {
  /** The relay's final reply, e.g. `250 2.0.0 Ok: queued as 4Xyz`. */
  readonly response: string;
  /** Envelope recipients the relay accepted / refused at RCPT TO (refused ones do not fail the send). */
  readonly accepted: readonly string[];
  readonly rejected: readonly string[];
}

export interface Relay {
  /** Resolves with the relay's answer; rejects when the relay refused or could not be reached. */
  send(mail: OutboundMail): Promise<string>;
  /** As `send`, with the recipients the relay accepted and refused. */
  deliver(mail: OutboundMail): Promise<RelayReceipt>;
  close(): void;
}

function addressList(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.map((v) => (typeof v === 'string' ? v : String((v as { address?: unknown }).address ?? '')));
}

/** A relay for the configured host, or null when `delivery.relay.host` is null (nothing is sent then). */
export function createRelay(config: RelayConfig): Relay | null {
  if (!config.host) return null;
  const transport = nodemailer.createTransport({
    host: config.host,
    port: config.port,
    secure: config.secure,
    auth: config.user ? { user: config.user, pass: config.password ?? '' } : undefined,
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: 60_000,
  });
  const deliver = async (mail: OutboundMail): Promise<RelayReceipt> => {
    const envelope = { from: mail.from, to: [...mail.to] };
    const info =
      'raw' in mail
        ? await transport.sendMail({ envelope, raw: Buffer.from(mail.raw.buffer, mail.raw.byteOffset, mail.raw.byteLength) })
        : await transport.sendMail({ envelope, ...mail.compose });
    const i = info as { response?: unknown; accepted?: unknown; rejected?: unknown };
    return { response: String(i.response ?? ''), accepted: addressList(i.accepted), rejected: addressList(i.rejected) };
  };
  return {
    deliver,
    send: async (mail) => (await deliver(mail)).response,
    close: () => transport.close(),
  };
}

/** Background sends of one plugin, tracked so tests and shutdown can wait for them. */
export class OutboundQueue {
  private readonly pending = new Set<Promise<void>>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  /** Starts `task` now; its failure is logged with `fields`, never thrown. */
  run(task: () => Promise<string>, fields: Record<string, unknown>): void {
    const p: Promise<void> = task()
      .then((response) => this.log.info('sent through the relay', { ...fields, response }))
      .catch((err: unknown) => this.log.warn('relay send failed', { ...fields, err }))
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Resolves when every send started so far has finished. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Waits for sends in flight, at most `ms`. */
  async drain(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.settled(), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }
}

/** The local part of an address, lowercased ('' for the null sender). */
export function localPart(address: string): string {
  const at = address.lastIndexOf('@');
  return (at < 0 ? address : address.slice(0, at)).toLowerCase();
}
