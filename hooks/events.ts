/**
 * Live per-user events that are not change-log entries (e.g. junk-notify's `marked.spam` / `marked.ham`). A plugin
 * publishes them on the ephemeral pub/sub, on the user's channel, so every server instance sharing the ephemeral
 * store sees them; the HTTP event stream (`GET /users/:user/updates`) forwards each as a named SSE event
 * (`event: marked.spam`). They are live only: not stored, never replayed after a reconnect, and they carry no
 * SSE `id`, so `Last-Event-ID` keeps naming a change-log entry (see protocols/http/updates.ts).
 */
import type { EphemeralPort } from '../storage/ports.ts';

export interface UserEvent {
  /** The SSE event name: letters, digits, `.`, `_`, `-`. */
  readonly event: string;
  /** JSON-serializable payload (the SSE `data`). */
  readonly data: Record<string, unknown>;
}

const EVENT_NAME = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

/** The ephemeral pub/sub channel of a user's live events. */
export function userEventChannel(userId: string): string {
  return `user:${userId}:events`;
}

/** Publishes a live event for a user (delivered to the user's open event streams, if any). */
export async function publishUserEvent(ephemeral: Pick<EphemeralPort, 'publish'>, userId: string, event: UserEvent): Promise<void> {
  if (!EVENT_NAME.test(event.event)) throw new Error(`invalid event name: ${JSON.stringify(event.event)}`);
  await ephemeral.publish(userEventChannel(userId), JSON.stringify({ event: event.event, data: event.data }));
}

/** A published message back as an event; null when it is not one (never trust the channel blindly). */
export function parseUserEvent(message: string): UserEvent | null {
  try {
    const value = JSON.parse(message) as { event?: unknown; data?: unknown };
    if (typeof value.event !== 'string' || !EVENT_NAME.test(value.event)) return null;
    if (typeof value.data !== 'object' || value.data === null || Array.isArray(value.data)) return null;
    return { event: value.event, data: value.data as Record<string, unknown> };
  } catch {
    return null;
  }
}
