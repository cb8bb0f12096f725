/**
 * The keys SORT and THREAD derive from a message's stored sort data (MessageSortData): its base subject, its
 * address keys, its thread ids. Each is computed once per MessageSortData object and remembered with it (a WeakMap,
 * gone with the object): objects held by the shared sort data cache (storage/mailbox-index/sort-cache.ts) are
 * reused by every SORT and THREAD, so their keys are derived once per process, not once per command.
 *
 * A key is remembered only once the field it comes from is present (the cache adds fields to an object it holds).
 */
import type { EnvelopeAddress, MessageSortData } from '../ports.ts';
import { baseSubject } from './base-subject.ts';
import type { BaseSubject } from './base-subject.ts';
import { messageIds } from './references.ts';

interface Derived {
  subject?: BaseSubject;
  from?: string;
  to?: string;
  cc?: string;
  displayfrom?: string;
  displayto?: string;
  /** The Message-ID thread key (lower-cased), null when it has none. */
  id?: string | null;
  /** The ids it refers to, lower-cased: References, else the first In-Reply-To id. */
  refs?: readonly string[];
}

const memo = new WeakMap<MessageSortData, Derived>();

function derived(m: MessageSortData): Derived {
  let d = memo.get(m);
  if (!d) memo.set(m, (d = {}));
  return d;
}

/** The RFC 5256 base subject of the message (its `subject` field must have been read). */
export function subjectOf(m: MessageSortData): BaseSubject {
  if (m.subject === undefined) return baseSubject('');
  const d = derived(m);
  return (d.subject ??= baseSubject(m.subject));
}

export type AddressField = 'from' | 'to' | 'cc';
export type AddressKeyName = AddressField | 'displayfrom' | 'displayto';

/** An address sort key of the message, computed by `compute` from the first address the first time it is asked. */
export function addressKeyOf(m: MessageSortData, name: AddressKeyName, compute: (address: EnvelopeAddress | null | undefined) => string): string {
  const field: AddressField = name === 'displayfrom' ? 'from' : name === 'displayto' ? 'to' : name;
  const address = m[field];
  if (address === undefined) return compute(address);
  const d = derived(m);
  return (d[name] ??= compute(address));
}

/** The message's Message-ID as a thread key (lower-cased), or null (its threading fields must have been read). */
export function threadIdOf(m: MessageSortData): string | null {
  if (m.messageId === undefined) return null;
  const d = derived(m);
  if (d.id === undefined) d.id = messageIds(m.messageId)[0]?.toLowerCase() ?? null;
  return d.id;
}

/** The ids the message refers to, lower-cased: its References, else the first id of its In-Reply-To. */
export function threadRefsOf(m: MessageSortData): readonly string[] {
  if (m.references === undefined && m.inReplyTo === undefined) return [];
  const d = derived(m);
  if (!d.refs) {
    let refs = messageIds(m.references);
    if (refs.length === 0) refs = messageIds(m.inReplyTo).slice(0, 1);
    d.refs = refs.map((ref) => ref.toLowerCase());
  }
  return d.refs;
}
