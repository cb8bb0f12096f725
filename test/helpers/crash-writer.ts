/**
 * Child process for the crash-recovery test: appends generated messages as fast as it can and prints
 * `ACK <index> <uid>` after each append is acknowledged (durable). The parent kills it with SIGKILL. Its search
 * indexer never runs: every acknowledged message dies with its search row not yet indexed.
 * Usage: crash-writer.ts DATA_DIR USER_ID MAILBOX_ID FIRST_INDEX
 */
import { openSqliteStorage } from '../../storage/sqlite/index.ts';
import { ingestMessage } from '../../storage/mime/ingest.ts';
import { argv, writeOut } from '../../hooks/runtime.ts';
import { generatedMessage } from './generated-mail.ts';

const [dataDir, userId, mailboxId, first] = argv();
const storage = await openSqliteStorage({ dataDir: dataDir!, searchIndexer: { delayMs: 3_600_000 } });
writeOut('READY\n');
for (let i = Number(first); ; i++) {
  const message = await ingestMessage(generatedMessage(i), storage.blobs, { blobThreshold: 1024 });
  const result = await storage.messages.append({ userId: userId!, mailboxId: mailboxId!, flags: [], internalDate: Date.now(), message });
  writeOut(`ACK ${i} ${result.uid}\n`);
}
