/**
 * One tiny adapter over the two synchronous SQLite bindings we can use:
 * - `node:sqlite` (`DatabaseSync`): Deno 2 and Node >= 22.13;
 * - `better-sqlite3`: Node 20, which has no `node:sqlite`.
 *
 * Both are loaded with a computed dynamic `import()` so that Deno never resolves better-sqlite3 (it cannot load
 * its native addon). Positional `?` parameters only; BLOB results come back as plain `Uint8Array`; booleans bind
 * as 0/1 and `undefined` as NULL. Prepared statements are cached per SQL text.
 */

export type SqlValue = null | number | bigint | string | Uint8Array;
export type SqlParam = SqlValue | boolean | undefined;
export type Row = Record<string, SqlValue>;

export interface RunResult {
  changes: number;
  lastInsertRowid: number;
}

export interface Db {
  /** Which binding is in use. */
  readonly driver: 'node:sqlite' | 'better-sqlite3';
  exec(sql: string): void;
  run(sql: string, ...params: SqlParam[]): RunResult;
  get<T = Row>(sql: string, ...params: SqlParam[]): T | undefined;
  all<T = Row>(sql: string, ...params: SqlParam[]): T[];
  /**
   * Runs `fn` inside `BEGIN IMMEDIATE` … `COMMIT` (the write lock is taken up front, so a concurrent writer in
   * another process waits for busy_timeout instead of failing mid-way). `fn` must be synchronous. A nested call
   * joins the outer transaction.
   */
  transaction<T>(fn: () => T): T;
  /**
   * `transaction()` that hands back the after-commit and after-durable callbacks instead of running them (group
   * commit runs them once the commit is durable, or the after-durable ones only then). Not nestable.
   */
  transactionDeferred<T>(fn: () => T): Committed<T>;
  /**
   * `transactionDeferred()` that does not wait for a write lock another connection holds: null (and `fn` not run)
   * when the database is busy, so the caller can wait without blocking the event loop (group commit).
   */
  tryTransactionDeferred<T>(fn: () => T): Committed<T> | null;
  /**
   * Inside a transaction: runs `fn` in a SAVEPOINT. When it throws, only its own changes are rolled back (its
   * `onRollback` callbacks run, its `afterCommit` callbacks are dropped) and the error is rethrown; the
   * transaction goes on.
   */
  savepoint<T>(fn: () => T): T;
  /** Inside a transaction: run `fn` if the transaction rolls back (undo of file moves). */
  onRollback(fn: () => void): void;
  /** Inside a transaction: run `fn` after the transaction commits. */
  afterCommit(fn: () => void): void;
  /**
   * Inside a transaction: run `fn` once the commit is durable, after the after-commit work (`transaction()`
   * commits with an fsync: right after it; a group commit without its own fsync: after the next one). For what must
   * not happen before the commit survives a power cut, such as unlinking a blob file the commit released.
   */
  afterDurable(fn: () => void): void;
  readonly inTransaction: boolean;
  /** The database file. */
  readonly path: string;
  close(): void;
}

/** A transaction committed by `transactionDeferred()`: its result and the callbacks left to run. */
export interface Committed<T> {
  result: T;
  afterCommit: () => void;
  /** Null when nothing waits for durability. */
  afterDurable: (() => void) | null;
}

/** The subset of a prepared statement both bindings share. */
interface RawStatement {
  run(...params: SqlValue[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  get(...params: SqlValue[]): unknown;
  all(...params: SqlValue[]): unknown[];
}

interface RawDatabase {
  exec(sql: string): unknown;
  prepare(sql: string): RawStatement;
  close(): unknown;
}

/** Minimal shape of the `node:sqlite` module (not in @types/node 20). */
interface NodeSqliteModule {
  DatabaseSync: new (path: string, options?: Record<string, unknown>) => RawDatabase;
}

type BetterSqliteCtor = new (path: string, options?: Record<string, unknown>) => RawDatabase;

async function loadNodeSqlite(): Promise<NodeSqliteModule | null> {
  const specifier = 'node:sqlite';
  try {
    const mod = (await import(specifier)) as Partial<NodeSqliteModule>;
    return typeof mod.DatabaseSync === 'function' ? (mod as NodeSqliteModule) : null;
  } catch {
    return null;
  }
}

async function loadBetterSqlite(): Promise<BetterSqliteCtor> {
  const specifier = 'better-sqlite3';
  const mod = (await import(specifier)) as { default: BetterSqliteCtor };
  return mod.default;
}

function bindParams(params: SqlParam[]): SqlValue[] {
  const out: SqlValue[] = new Array(params.length);
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (p === undefined) out[i] = null;
    else if (typeof p === 'boolean') out[i] = p ? 1 : 0;
    else out[i] = p;
  }
  return out;
}

/** better-sqlite3 returns Node Buffers for BLOBs; hand out plain Uint8Array views over the same memory. */
function normalizeRow(row: unknown): Row {
  const r = row as Row;
  for (const key in r) {
    const v = r[key];
    if (v instanceof Uint8Array && v.constructor !== Uint8Array) {
      r[key] = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  return r;
}

/** SQLITE_BUSY from either binding: another connection holds the lock. */
function isBusy(err: unknown): boolean {
  const e = err as { code?: unknown; errcode?: unknown; message?: unknown };
  return e?.code === 'SQLITE_BUSY' || e?.errcode === 5 || (typeof e?.message === 'string' && e.message.includes('database is locked'));
}

/** Runs every callback; one throwing does not stop the others (best effort: collect() repairs what an undo missed). */
function runAll(callbacks: Array<() => void>): void {
  for (const fn of callbacks) {
    try {
      fn();
    } catch {
      // best effort
    }
  }
}

class SqliteDb implements Db {
  readonly driver: 'node:sqlite' | 'better-sqlite3';
  #raw: RawDatabase;
  #statements = new Map<string, RawStatement>();
  #depth = 0;
  #rollbacks: Array<() => void> = [];
  #commits: Array<() => void> = [];
  #durables: Array<() => void> = [];
  #normalize: boolean;

  readonly path: string;
  #savepoints = 0;
  #busyTimeout: number | null = null;

  constructor(raw: RawDatabase, driver: 'node:sqlite' | 'better-sqlite3', path: string) {
    this.#raw = raw;
    this.driver = driver;
    this.path = path;
    this.#normalize = driver === 'better-sqlite3';
  }

  get inTransaction(): boolean {
    return this.#depth > 0;
  }

  #prepare(sql: string): RawStatement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.#raw.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  exec(sql: string): void {
    this.#raw.exec(sql);
    if (sql.includes('busy_timeout')) this.#busyTimeout = null;
  }

  run(sql: string, ...params: SqlParam[]): RunResult {
    const r = this.#prepare(sql).run(...bindParams(params));
    return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) };
  }

  get<T = Row>(sql: string, ...params: SqlParam[]): T | undefined {
    const row = this.#prepare(sql).get(...bindParams(params));
    if (row === undefined || row === null) return undefined;
    return (this.#normalize ? normalizeRow(row) : row) as T;
  }

  all<T = Row>(sql: string, ...params: SqlParam[]): T[] {
    const rows = this.#prepare(sql).all(...bindParams(params));
    if (this.#normalize) for (const row of rows) normalizeRow(row);
    return rows as T[];
  }

  transaction<T>(fn: () => T): T {
    if (this.#depth > 0) return fn();
    const { result, afterCommit, afterDurable } = this.transactionDeferred(fn);
    afterCommit();
    afterDurable?.();
    return result;
  }

  transactionDeferred<T>(fn: () => T): Committed<T> {
    if (this.#depth > 0) throw new Error('transactionDeferred inside a transaction');
    this.#raw.exec('BEGIN IMMEDIATE');
    return this.#runBegun(fn);
  }

  tryTransactionDeferred<T>(fn: () => T): Committed<T> | null {
    if (this.#depth > 0) throw new Error('tryTransactionDeferred inside a transaction');
    // the connection's own timeout, read once (exec of a busy_timeout pragma forgets it)
    const timeout = (this.#busyTimeout ??= Number(Object.values(this.get('PRAGMA busy_timeout') ?? {})[0] ?? 0));
    this.#raw.exec('PRAGMA busy_timeout = 0');
    try {
      this.#raw.exec('BEGIN IMMEDIATE');
    } catch (err) {
      if (isBusy(err)) return null;
      throw err;
    } finally {
      this.#raw.exec(`PRAGMA busy_timeout = ${timeout}`);
    }
    return this.#runBegun(fn);
  }

  /** The rest of a transaction after its BEGIN: run `fn`, COMMIT (or ROLLBACK and undo), hand back the after-commit work. */
  #runBegun<T>(fn: () => T): Committed<T> {
    this.#depth = 1;
    let result: T;
    try {
      result = fn();
      if (result instanceof Promise) throw new TypeError('transaction callback must be synchronous');
      this.#raw.exec('COMMIT');
    } catch (err) {
      try {
        this.#raw.exec('ROLLBACK');
      } catch {
        // already rolled back by SQLite (e.g. after SQLITE_FULL); nothing left to undo in the database
      }
      const undo = this.#rollbacks.reverse();
      this.#reset();
      runAll(undo);
      throw err;
    }
    const after = this.#commits;
    const durable = this.#durables;
    this.#reset();
    // the commit stands; after-commit work (unlinks, notifications) is best effort
    return { result, afterCommit: () => runAll(after), afterDurable: durable.length > 0 ? () => runAll(durable) : null };
  }

  savepoint<T>(fn: () => T): T {
    if (this.#depth === 0) throw new Error('savepoint outside a transaction');
    const name = `sp${++this.#savepoints}`;
    const rollbacks = this.#rollbacks.length;
    const commits = this.#commits.length;
    const durables = this.#durables.length;
    this.#raw.exec(`SAVEPOINT ${name}`);
    try {
      const result = fn();
      if (result instanceof Promise) throw new TypeError('savepoint callback must be synchronous');
      this.#raw.exec(`RELEASE ${name}`);
      return result;
    } catch (err) {
      try {
        this.#raw.exec(`ROLLBACK TO ${name}`);
        this.#raw.exec(`RELEASE ${name}`);
      } catch {
        // SQLite already rolled the whole transaction back (SQLITE_FULL, …): its COMMIT fails and undoes the rest
      }
      const undo = this.#rollbacks.splice(rollbacks).reverse();
      this.#commits.length = commits;
      this.#durables.length = durables;
      runAll(undo);
      throw err;
    } finally {
      this.#savepoints--;
    }
  }

  #reset(): void {
    this.#depth = 0;
    this.#rollbacks = [];
    this.#commits = [];
    this.#durables = [];
  }

  onRollback(fn: () => void): void {
    if (this.#depth === 0) throw new Error('onRollback outside a transaction');
    this.#rollbacks.push(fn);
  }

  afterCommit(fn: () => void): void {
    if (this.#depth === 0) throw new Error('afterCommit outside a transaction');
    this.#commits.push(fn);
  }

  afterDurable(fn: () => void): void {
    if (this.#depth === 0) throw new Error('afterDurable outside a transaction');
    this.#durables.push(fn);
  }

  close(): void {
    this.#statements.clear();
    this.#raw.close();
  }
}

export interface OpenDbOptions {
  /** Force a binding (tests); default: node:sqlite when it loads, else better-sqlite3. */
  driver?: 'node:sqlite' | 'better-sqlite3';
}

/** Opens (creating if needed) the database file with the best available binding. */
export async function openDb(path: string, options: OpenDbOptions = {}): Promise<Db> {
  if (options.driver !== 'better-sqlite3') {
    const nodeSqlite = await loadNodeSqlite();
    if (nodeSqlite) return new SqliteDb(new nodeSqlite.DatabaseSync(path), 'node:sqlite', path);
    if (options.driver === 'node:sqlite') throw new Error('node:sqlite is not available in this runtime');
  }
  const BetterSqlite = await loadBetterSqlite();
  return new SqliteDb(new BetterSqlite(path), 'better-sqlite3', path);
}
