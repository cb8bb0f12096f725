/**
 * IDLE (RFC 2177): `+ idling`, then changes to the selected mailbox are pushed as they happen (EXISTS,
 * EXPUNGE, FETCH FLAGS) until the client sends DONE. A keep-alive `* OK Still here` goes out every
 * `imap.idleRestartSeconds`. A client that sends a tagged command instead of DONE (some iOS versions do) has
 * IDLE ended for it and the command is then read and run as usual. While IDLE runs, the idle timer is
 * `imap.idleCommandTimeoutSeconds` (input from the client resets it; keep-alives don't), then the session's again.
 */
import { AUTHENTICATED, command } from './command.ts';
import { bad, ok } from './responses.ts';
import type { Outcome } from './responses.ts';
import type { ImapSession } from './session.ts';

const decoder = new TextDecoder();

export const idle = command({
  name: 'IDLE',
  states: AUTHENTICATED,
  parse: (args) => args.end(),
  async run(session) {
    session.conn.setIdleTimeout?.(session.app.config.imap.idleCommandTimeoutSeconds * 1000);
    try {
      return await idling(session);
    } finally {
      session.restoreIdleTimeout();
    }
  },
});

async function idling(session: ImapSession): Promise<Outcome> {
  session.send('+ idling');
  if (session.selected) await session.notify(true, true);
  await session.flush();
  const line = session.reader.readLine();
  const keepAliveMs = session.app.config.imap.idleRestartSeconds * 1000;
  for (;;) {
    const change = session.waitForChange();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = new Promise<'tick'>((resolve) => (timer = setTimeout(() => resolve('tick'), keepAliveMs)));
    const winner = await Promise.race([line.then((bytes) => ({ bytes })), change.promise.then(() => 'change' as const), tick]);
    clearTimeout(timer);
    change.cancel();
    if (winner === 'tick') {
      session.send('* OK Still here');
    } else if (winner === 'change') {
      if (session.selected) await session.notify(true);
    } else {
      const { bytes } = winner;
      if (bytes === null) return { ...bad('IDLE ended without DONE'), close: true };
      if (decoder.decode(bytes).trim().toUpperCase() !== 'DONE') session.reader.unreadLine(bytes);
      return ok('IDLE terminated');
    }
    if (session.closing) return ok('IDLE terminated');
    await session.flush();
  }
}
