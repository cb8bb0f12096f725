/**
 * Every write from a front end passes a pipeline function. Protocol modules (protocols/**: the HTTP routes, the CLI,
 * IMAP, POP3, LMTP) may read storage, but never call a port's write methods themselves, nor the storage helpers that
 * write (storage/users.ts createUser, storage/delivery-settings.ts putFilter, ...): writes go through hooks/pipeline/
 * (storeMessage, createMailbox, createUser, putFilter, ...), whose last stage is the storage plugin. A static check,
 * beside test/import-floors.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { projectRoot, sources } from './helpers/source-files.ts';
import { join, relative } from 'node:path';

const root = projectRoot;

/**
 * Every method of the ports that hold data (storage/ports.ts), as a read or a write. A method added to a port must be
 * put in one of the two lists, so the check below cannot silently miss a new write method.
 */
const PORTS: Record<string, { property: string; reads: string[]; writes: string[] }> = {
  UsersPort: {
    property: 'users',
    reads: ['get', 'getByUsername', 'getByLoginName', 'list', 'count', 'listAddresses', 'resolveAddress'],
    writes: ['create', 'update', 'delete', 'recalculateUsage', 'addAddress', 'removeAddress', 'updateAddress'],
  },
  UserDocumentsPort: { property: 'documents', reads: ['list', 'get', 'findByKey', 'listAll'], writes: ['put', 'delete'] },
  MailboxesPort: { property: 'mailboxes', reads: ['get', 'getByPath', 'getBySpecialUse', 'list', 'counters'], writes: ['create', 'rename', 'setSubscribed', 'delete'] },
  MessagesPort: {
    property: 'messages',
    reads: ['get', 'parts', 'getById', 'index', 'indexColumns', 'indexSnapshot', 'page', 'content', 'searchText', 'findByMessageId', 'threadCounts', 'sortData'],
    writes: ['append', 'setFlags', 'copy', 'move', 'expunge', 'saveIndexSnapshot'],
  },
  BlobsPort: { property: 'blobs', reads: ['read', 'stats'], writes: ['stage', 'discard', 'collect'] },
  ChangesPort: { property: 'changes', reads: ['since', 'latest', 'subscribe', 'vanished'], writes: ['prune'] },
};

/** Storage helpers that write (each takes the ports and changes accounts or mail); the pipeline's commit calls them. */
const WRITE_HELPERS: Record<string, string[]> = {
  'storage/users.ts': ['createUser', 'setPassword', 'deleteUser'],
  'storage/app-passwords.ts': ['createAppPassword'],
  'storage/access-tokens.ts': ['issueToken', 'revokeTokens'],
  'storage/delivery-settings.ts': ['putFilter', 'deleteFilter', 'setAutoreply', 'disableAutoreply', 'updateDeliverySettings'],
};

function interfaceMethods(ports: string, name: string): string[] {
  const start = ports.indexOf(`export interface ${name} {`);
  assert.ok(start >= 0, `storage/ports.ts has no interface ${name}`);
  const body = ports.slice(start, ports.indexOf('\n}', start));
  return [...body.matchAll(/^ {2}(\w+)\??(?:<[^>]*>)?\(/gm)].map((m) => m[1]!);
}

describe('write floors', () => {
  it('classifies every method of the data ports as a read or a write', () => {
    const ports = readFileSync(join(root, 'storage/ports.ts'), 'utf8');
    for (const [name, port] of Object.entries(PORTS)) {
      assert.deepEqual(interfaceMethods(ports, name).sort(), [...port.reads, ...port.writes].sort(), `${name}: classify its methods in this test`);
    }
  });

  it('the write helpers listed exist', () => {
    for (const [file, names] of Object.entries(WRITE_HELPERS)) {
      const text = readFileSync(join(root, file), 'utf8');
      for (const name of names) assert.match(text, new RegExp(`export (async )?function ${name}\\b`), `${file} ${name}`);
    }
  });

  it('protocols/ never calls a storage write method or write helper: writes pass a pipeline function', () => {
    const offenders = sources(join(root, 'protocols')).flatMap((file) => offendersIn(readFileSync(file, 'utf8'), relative(root, file)));
    assert.deepEqual(offenders, []);
  });

  it('the check finds direct writes and write-helper imports', () => {
    const bypass = [
      "import { createUser, findUser } from '../storage/users.ts';",
      "import { putFilter as put } from '../../storage/delivery-settings.ts';",
      "import type { AppPasswordData } from '../../storage/app-passwords.ts';",
      'await app.storage.users.addAddress(user.id, x);',
      "await storage.documents.put<FilterData>(id, 'filter', data);",
      'await app.storage.users.listAddresses(user.id);',
    ].join('\n');
    assert.deepEqual(offendersIn(bypass, 'x.ts'), [
      'x.ts: users.addAddress(',
      'x.ts: documents.put<FilterData>(',
      'x.ts: imports createUser from storage/users.ts',
      'x.ts: imports putFilter from storage/delivery-settings.ts',
    ]);
  });
});

const WRITE_CALL = new RegExp(
  `\\b(?:${Object.values(PORTS)
    .map((p) => `${p.property}\\.(?:${p.writes.join('|')})`)
    .join('|')})\\s*(?:<[^>()]*>)?\\s*\\(`,
  'g',
);

/** The direct storage writes and write-helper imports in one source file. */
function offendersIn(text: string, where: string): string[] {
  const offenders: string[] = [];
  for (const match of text.matchAll(WRITE_CALL)) offenders.push(`${where}: ${match[0]}`);
  for (const imported of text.matchAll(/import\s+(?!type\b)\{([^}]*)\}\s+from\s+'([^']+)'/g)) {
    const target = Object.keys(WRITE_HELPERS).find((f) => imported[2]!.endsWith(f));
    if (!target) continue;
    const names = imported[1]!.split(',').map((n) => n.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]!);
    for (const name of names) if (WRITE_HELPERS[target]!.includes(name)) offenders.push(`${where}: imports ${name} from ${target}`);
  }
  return offenders;
}
