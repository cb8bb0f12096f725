/**
 * Ids: every object is an ObjectId in MongoDB and its 24-hex string in the ports (the embedded backend renders its
 * row ids in the same shape, storage/sqlite/common.ts), so one id format is seen everywhere.
 */
import { ObjectId } from 'mongodb';
import { StorageError } from '../ports.ts';
import type { Id } from '../ports.ts';

const HEX24 = /^[0-9a-fA-F]{24}$/;

/** The ObjectId an id names, or null when it is not 24 hex digits (it names nothing). */
export function objectId(id: Id): ObjectId | null {
  return typeof id === 'string' && HEX24.test(id) ? ObjectId.createFromHexString(id) : null;
}

/** Like objectId, but throws NONEXISTENT naming `what`. */
export function requireObjectId(id: Id, what: string): ObjectId {
  const oid = objectId(id);
  if (!oid) throw new StorageError('NONEXISTENT', `${what} ${String(id)} does not exist`);
  return oid;
}

export function idOf(oid: ObjectId): Id {
  return oid.toHexString();
}
