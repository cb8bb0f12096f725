/**
 * Delivery over LMTP for tests: one transaction on an in-memory connection to serveLmtp (the real protocol
 * module on the real stack), returning the reply for each recipient after DATA; and readers for what was stored.
 */
import type { App } from '../../protocols/app.ts';
import { serveLmtp } from '../../protocols/lmtp.ts';
import { readAll, readMessage } from '../../storage/mime/reassemble.ts';
import type { MessageRecord } from '../../storage/ports.ts';
import { memoryConnection, memoryPair, TranscriptClient } from './memory-connection.ts';

/** Delivers `message` (CRLF text) from `from` to `recipients`; one reply line per recipient after DATA. */
export async function lmtpDeliver(app: App, from: string, recipients: string[], message: string): Promise<string[]> {
  const { client: socket, server } = memoryPair();
  const done = serveLmtp(app, memoryConnection(server), { hostname: 'mx.test' });
  const client = new TranscriptClient(socket);
  await client.line();
  client.cmd('LHLO mta.test');
  await client.reply();
  client.cmd(`MAIL FROM:<${from}>`);
  const mail = await client.line();
  if (!mail?.startsWith('250')) throw new Error(`MAIL FROM refused: ${mail}`);
  const accepted: string[] = [];
  for (const rcpt of recipients) {
    client.cmd(`RCPT TO:<${rcpt}>`);
    const line = await client.line();
    if (line?.startsWith('250')) accepted.push(rcpt);
  }
  if (accepted.length === 0) throw new Error('no recipient accepted');
  client.cmd('DATA');
  const go = await client.line();
  if (!go?.startsWith('354')) throw new Error(`DATA refused: ${go}`);
  const body = message.endsWith('\r\n') ? message : message + '\r\n';
  client.send(body.replace(/^\./gm, '..') + '.\r\n');
  const replies = (await client.lines(accepted.length)).map((l) => l ?? '');
  client.cmd('QUIT');
  await client.line();
  await done;
  return replies;
}

/** A user's messages in a mailbox (by path, or special use like '\\Junk'), with their text. */
export async function mailboxMessages(app: App, username: string, mailbox: string): Promise<Array<MessageRecord & { text: string }>> {
  const user = await app.storage.users.getByUsername(username);
  if (!user) throw new Error(`no user ${username}`);
  const box = mailbox.startsWith('\\')
    ? await app.storage.mailboxes.getBySpecialUse(user.id, mailbox as '\\Junk')
    : await app.storage.mailboxes.getByPath(user.id, mailbox);
  if (!box) throw new Error(`${username} has no ${mailbox}`);
  const out: Array<MessageRecord & { text: string }> = [];
  for (const entry of await app.storage.messages.index(box.id)) {
    const record = (await app.storage.messages.get(box.id, entry.uid))!;
    const text = new TextDecoder().decode(await readAll(readMessage((await app.storage.messages.content(record.id))!, app.storage.blobs)));
    out.push({ ...record, text });
  }
  return out;
}
