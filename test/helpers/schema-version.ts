/** A database at an older schema version: the first `version` migrations applied, as that version left it. */
import type { Db } from '../../storage/sqlite/driver.ts';
import { MIGRATIONS } from '../../storage/sqlite/schema.ts';

export function applyMigrationsUpTo(db: Db, version: number): void {
  for (const migration of MIGRATIONS.slice(0, version)) {
    if (typeof migration === 'string') db.exec(migration);
    else migration(db);
  }
  db.exec(`PRAGMA user_version = ${version}`);
}
