/**
 * Mailbox index snapshots of the embedded backend (MessagesPort.indexSnapshot / saveIndexSnapshot) as one file per
 * mailbox under `<dataDir>/index/`, not as a database row: reading a 3.2 MB snapshot (100,000 messages) from a file
 * takes ~3 ms (copying it into fresh pages), from a SQLite blob 10-40 ms (its chain of 800 overflow pages).
 *
 *   <mailbox id>.snapshot   16 bytes: uidValidity f64, cursor f64 (little-endian); then the snapshot's bytes
 *
 * Each file is whole and says itself which UIDVALIDITY and change-log cursor it was taken at, so two processes
 * saving at once cannot pair one's bytes with the other's cursor: it is written beside its place and renamed over
 * it. A snapshot is a shortcut, never the data: a file that is missing, short or unreadable means a full read
 * (mailbox-index.ts), so it is not fsynced. A deleted mailbox's file goes when a read finds the mailbox gone. A read
 * opens the file and hands it out as a source (ports.ts IndexSnapshotSource): the index reads the part it needs at
 * once, the rest later from the same open file.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IndexSnapshot, IndexSnapshotSource } from '../ports.ts';
import type { Db } from './driver.ts';
import { num } from './common.ts';

const PREFIX = 16;

/** Temporary file names of this process differ from another process's (workers share the directory). */
const UNIQUE = Math.random().toString(36).slice(2, 10);
let temporaries = 0;

export class IndexSnapshotFiles {
  readonly #db: Db;
  readonly #dir: string;
  #made = false;

  constructor(db: Db, dir: string) {
    this.#db = db;
    this.#dir = dir;
  }

  #path(mailboxId: number): string {
    return join(this.#dir, `${mailboxId}.snapshot`);
  }

  /**
   * The saved snapshot opened for reading (its file stays open until the source is closed: a newer file renamed over
   * it meanwhile does not change what it reads), or null: none, unreadable, of another UIDVALIDITY, or older than the
   * pruned change log.
   */
  read(mailboxId: number): IndexSnapshotSource | null {
    const r = this.#db.get<{ uid_validity: number | null; pruned: number | null }>(
      "SELECT (SELECT uid_validity FROM mailboxes WHERE id = ?) AS uid_validity, (SELECT value FROM meta WHERE key = 'changes_pruned_through') AS pruned",
      mailboxId,
    );
    if (r?.uid_validity == null) {
      this.#remove(mailboxId);
      return null;
    }
    let fd: number;
    try {
      fd = openSync(this.#path(mailboxId), 'r');
    } catch {
      return null;
    }
    let source: IndexSnapshotSource | null = null;
    try {
      const prefix = readAt(fd, 0, PREFIX);
      const length = fstatSync(fd).size - PREFIX;
      const view = new DataView(prefix.buffer, prefix.byteOffset, PREFIX);
      const uidValidity = view.getFloat64(0, true);
      const cursor = view.getFloat64(8, true);
      if (uidValidity === num(r.uid_validity) && num(r.pruned ?? 0) <= cursor) source = new SnapshotFile(fd, uidValidity, cursor, length);
    } catch {
      // short or unreadable: no snapshot
    } finally {
      if (!source) closeSync(fd);
    }
    return source;
  }

  /** Keeps the snapshot unless the saved one was taken at a later cursor (same UIDVALIDITY) or the mailbox is gone. */
  save(mailboxId: number, snapshot: IndexSnapshot): void {
    const mailbox = this.#db.get<{ uid_validity: number }>('SELECT uid_validity FROM mailboxes WHERE id = ?', mailboxId);
    if (!mailbox || num(mailbox.uid_validity) !== snapshot.uidValidity) return;
    const saved = this.#header(mailboxId);
    if (saved && saved.uidValidity === snapshot.uidValidity && saved.cursor > snapshot.cursor) return;
    if (!this.#made) mkdirSync(this.#dir, { recursive: true });
    this.#made = true;
    const file = new Uint8Array(PREFIX + snapshot.bytes.length);
    const view = new DataView(file.buffer);
    view.setFloat64(0, snapshot.uidValidity, true);
    view.setFloat64(8, snapshot.cursor, true);
    file.set(snapshot.bytes, PREFIX);
    const temporary = join(this.#dir, `${mailboxId}.${UNIQUE}.${++temporaries}.tmp`);
    try {
      writeFileSync(temporary, file);
      renameSync(temporary, this.#path(mailboxId));
    } catch (err) {
      this.#unlink(temporary);
      throw err;
    }
  }

  #header(mailboxId: number): { uidValidity: number; cursor: number } | null {
    let fd: number;
    try {
      fd = openSync(this.#path(mailboxId), 'r');
    } catch {
      return null;
    }
    try {
      const view = new DataView(readAt(fd, 0, PREFIX).buffer);
      return { uidValidity: view.getFloat64(0, true), cursor: view.getFloat64(8, true) };
    } catch {
      return null;
    } finally {
      closeSync(fd);
    }
  }

  #remove(mailboxId: number): void {
    this.#unlink(this.#path(mailboxId));
  }

  #unlink(path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
}

/** `length` bytes at `position` of an open file, in a fresh buffer; throws when the file is shorter. */
function readAt(fd: number, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const got = readSync(fd, out, done, length - done, position + done);
    if (got === 0) throw new Error('index snapshot file is shorter than it says');
    done += got;
  }
  return out;
}

/** An open snapshot file: the snapshot's bytes start after the file's own prefix. */
class SnapshotFile implements IndexSnapshotSource {
  readonly uidValidity: number;
  readonly cursor: number;
  readonly length: number;
  #fd: number | null;

  constructor(fd: number, uidValidity: number, cursor: number, length: number) {
    this.#fd = fd;
    this.uidValidity = uidValidity;
    this.cursor = cursor;
    this.length = length;
  }

  read(offset: number, length: number): Uint8Array {
    if (this.#fd === null) throw new Error('index snapshot file closed');
    if (offset < 0 || offset + length > this.length) throw new Error('index snapshot read past its end');
    return readAt(this.#fd, PREFIX + offset, length);
  }

  close(): void {
    if (this.#fd === null) return;
    closeSync(this.#fd);
    this.#fd = null;
  }
}
