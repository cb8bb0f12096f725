/**
 * Reading LMTP DATA: unstuffed chunk by chunk into a spool, the size limit enforced while reading (past it the
 * rest is read and dropped, so the session stays in sync with the client), bytes after the terminator handed back
 * to the reader as the next pipelined commands.
 */
import type { LineReader } from '../net/line-reader.ts';
import { DotUnstuffer } from '../net/dot-stuffing.ts';
import type { Spool } from '../../storage/spool.ts';

/** `complete`: the whole message is in the spool; `toobig`: over the limit (spool incomplete); `eof`: the client went away. */
export type DataStatus = 'complete' | 'toobig' | 'eof';

/** The reader's command budget runs for the whole message (a trickling client is cut off, see command-budget.ts). */
export async function receiveData(reader: LineReader, spool: Spool, maxSize: number): Promise<DataStatus> {
  reader.startBudget();
  try {
    return await receive(reader, spool, maxSize);
  } finally {
    reader.stopBudget();
  }
}

async function receive(reader: LineReader, spool: Spool, maxSize: number): Promise<DataStatus> {
  const unstuffer = new DotUnstuffer();
  let size = 0;
  let tooBig = false;
  for (;;) {
    const chunk = await reader.readBytes();
    if (chunk === null) return 'eof';
    const { data, done, rest } = unstuffer.push(chunk);
    size += data.length;
    if (size > maxSize) tooBig = true;
    if (!tooBig && data.length > 0) await spool.write(data);
    if (done) {
      reader.unread(rest);
      if (tooBig) return 'toobig';
      await spool.finish();
      return 'complete';
    }
  }
}
