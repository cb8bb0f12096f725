/**
 * SORT (RFC 5256) and SORT=DISPLAY (RFC 5957), protocol-neutral: UIDs in, UIDs out in the order the sort criteria
 * give, with the keys taken from stored data (MessagesPort.sortData: the envelope, the decoded subject, the parsed
 * Date), never from the message bytes. Ties, on every key, fall back to the mailbox order (ascending UID, which is
 * the order of sequence numbers); REVERSE turns one key round, not the tie-break.
 *
 *   const uids = await sortUids(storage.messages, mailboxId, matched, [{ key: 'subject', reverse: false }]);
 */
import { decodeWords } from '../mime/headers.ts';
import type { EnvelopeAddress, Id, MessageSortData, MessagesPort, SortDataWanted } from '../ports.ts';
import { casemap } from './base-subject.ts';
import { addressKeyOf, subjectOf } from './derived-keys.ts';

export type SortKeyName = 'arrival' | 'cc' | 'date' | 'from' | 'size' | 'subject' | 'to' | 'displayfrom' | 'displayto';

export const SORT_KEYS: readonly SortKeyName[] = ['arrival', 'cc', 'date', 'from', 'size', 'subject', 'to', 'displayfrom', 'displayto'];

export interface SortCriterion {
  key: SortKeyName;
  reverse: boolean;
}

/** The stored data these criteria need. */
export function sortDataWanted(criteria: readonly SortCriterion[]): SortDataWanted {
  const keys = new Set(criteria.map((c) => c.key));
  return {
    subject: keys.has('subject'),
    date: keys.has('date'),
    from: keys.has('from') || keys.has('displayfrom'),
    to: keys.has('to') || keys.has('displayto'),
    cc: keys.has('cc'),
  };
}

/** RFC 5256 FROM / TO / CC: the addr-mailbox of the first address (a group's start marker: the group name). */
export function addressKey(address: EnvelopeAddress | null | undefined): string {
  return casemap(address?.mailbox ?? '');
}

/** RFC 5957 DISPLAYFROM / DISPLAYTO: the decoded display name of the first address, else its addr-spec (a group: its name). */
export function displayKey(address: EnvelopeAddress | null | undefined): string {
  if (!address) return '';
  const name = address.name ? decodeWords(address.name).replace(/\s+/g, ' ').trim() : '';
  if (name) return casemap(name);
  return casemap(address.host ? `${address.mailbox ?? ''}@${address.host}` : (address.mailbox ?? ''));
}

function keyOf(key: SortKeyName, m: MessageSortData): string | number {
  switch (key) {
    case 'arrival':
      return m.internalDate;
    case 'date':
      return m.headerDate ?? m.internalDate;
    case 'size':
      return m.size;
    case 'subject':
      return subjectOf(m).base;
    case 'from':
    case 'to':
    case 'cc':
      return addressKeyOf(m, key, addressKey);
    case 'displayfrom':
    case 'displayto':
      return addressKeyOf(m, key, displayKey);
  }
}

/**
 * A key column as numbers in the same order: strings replaced by their rank among the distinct strings (compared
 * as `<` compares them), so the sort compares numbers, and each distinct string is compared only while ranking.
 */
function ranked(column: Array<string | number>): number[] {
  if (column.length === 0 || typeof column[0] === 'number') return column as number[];
  const strings = column as string[];
  const distinct = [...new Set(strings)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const rank = new Map<string, number>();
  distinct.forEach((text, i) => rank.set(text, i));
  return strings.map((text) => rank.get(text)!);
}

/** The UIDs of `data` in the order of `criteria` (each key computed once per message). */
export function sortMessages(data: readonly MessageSortData[], criteria: readonly SortCriterion[]): number[] {
  const keys = criteria.map((c) => ranked(data.map((m) => keyOf(c.key, m))));
  const order = data.map((_m, i) => i);
  order.sort((a, b) => {
    for (let k = 0; k < criteria.length; k++) {
      const x = keys[k]![a]!;
      const y = keys[k]![b]!;
      if (x === y) continue;
      const less = x < y ? -1 : 1;
      return criteria[k]!.reverse ? -less : less;
    }
    return data[a]!.uid - data[b]!.uid;
  });
  return order.map((i) => data[i]!.uid);
}

/** Sorts these UIDs of a mailbox (UIDs no longer there are left out). */
export async function sortUids(messages: Pick<MessagesPort, 'sortData'>, mailboxId: Id, uids: readonly number[], criteria: readonly SortCriterion[]): Promise<number[]> {
  if (uids.length === 0) return [];
  return sortMessages(await messages.sortData(mailboxId, uids, sortDataWanted(criteria)), criteria);
}
