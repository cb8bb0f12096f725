/**
 * THREAD (RFC 5256), protocol-neutral: the messages of a search result as a forest of threads, from stored data
 * (MessagesPort.sortData: decoded subject, parsed Date, Message-ID, In-Reply-To and the stored References text).
 *
 * - `references`: RFC 5256 §2.2 REFERENCES exactly: link by References (or the first In-Reply-To id), prune dummies,
 *   sort siblings by sent date, merge roots with the same base subject, sort again.
 * - `refs`: Dovecot's THREAD=REFS (the REFERENCES successor drafted as RFC 5256bis): the same links and pruning,
 *   no merging by subject, threads ordered by their latest message's sent date (children by their own).
 * - `orderedsubject`: RFC 5256 §2.1 ORDEREDSUBJECT: messages sorted by base subject and sent date, one thread per
 *   base subject with every later message a child of the first, threads by the first message's date.
 *
 * Ties on dates fall back to the mailbox order (ascending UID). Message-ids are compared case-insensitively, so
 * both backends give the same answer (the MongoDB backend keeps References folded). A node with `uid` 0 is a dummy.
 */
import type { MessageSortData } from '../ports.ts';
import { subjectOf as baseSubjectOf, threadIdOf, threadRefsOf } from './derived-keys.ts';

export type ThreadAlgorithm = 'references' | 'refs' | 'orderedsubject';

export const THREAD_ALGORITHMS: readonly ThreadAlgorithm[] = ['references', 'refs', 'orderedsubject'];

export interface ThreadNode {
  /** The message's UID; 0 for a dummy (a message that is referenced but not in the set). */
  uid: number;
  children: ThreadNode[];
}

interface Container {
  message: MessageSortData | null;
  /** Position in the input (mailbox order), the tie-break. */
  order: number;
  parent: Container | null;
  children: Container[];
}

function container(): Container {
  return { message: null, order: 0, parent: null, children: [] };
}

/** Would making `child` a child of `parent` close a loop? (Only when `parent` is `child` or below it.) */
function createsLoop(parent: Container, child: Container): boolean {
  if (parent === child) return true;
  if (child.children.length === 0) return false; // nothing below it: the usual case, no walk up a long chain
  for (let c: Container | null = parent; c; c = c.parent) if (c === child) return true;
  return false;
}

function unlink(child: Container): void {
  const parent = child.parent;
  if (!parent) return;
  parent.children.splice(parent.children.indexOf(child), 1);
  child.parent = null;
}

function link(parent: Container, child: Container): void {
  unlink(child);
  child.parent = parent;
  parent.children.push(child);
}

/** Step 1: containers linked by References / In-Reply-To; returns the root set (step 2). */
function linkByReferences(messages: readonly MessageSortData[]): Container[] {
  const byId = new Map<string, Container>();
  const all: Container[] = [];
  const get = (id: string): Container => {
    let c = byId.get(id);
    if (!c) {
      byId.set(id, (c = container()));
      all.push(c);
    }
    return c;
  };
  messages.forEach((message, order) => {
    const id = threadIdOf(message) ?? undefined;
    // no valid Message-ID, or one an earlier message already has: a container of its own
    let own = id !== undefined ? byId.get(id) : undefined;
    if (own?.message || id === undefined) {
      own = container();
      all.push(own);
    } else own = get(id);
    own.message = message;
    own.order = order;
    const chain = threadRefsOf(message).map((ref) => get(ref));
    // (A) each reference the parent of the next, unless already linked or a loop
    for (let i = 0; i + 1 < chain.length; i++) {
      const parent = chain[i]!;
      const child = chain[i + 1]!;
      if (child.parent || parent === child || createsLoop(parent, child)) continue;
      link(parent, child);
    }
    // (B) the last reference is the message's parent (the references are authoritative), none without references
    unlink(own);
    const last = chain[chain.length - 1];
    if (last && last !== own && !createsLoop(last, own)) link(last, own);
  });
  return all.filter((c) => c.parent === null);
}

/**
 * Every container under `roots`, children before their parent (post-order), without recursion: a thread can be a
 * chain of thousands of replies, deeper than the call stack.
 */
function postOrder(roots: readonly Container[]): Container[] {
  const out: Container[] = [];
  const stack: Array<{ c: Container; expanded: boolean }> = roots.map((c) => ({ c, expanded: false }));
  while (stack.length > 0) {
    const top = stack.pop()!;
    if (top.expanded) out.push(top.c);
    else {
      stack.push({ c: top.c, expanded: true });
      for (const child of top.c.children) stack.push({ c: child, expanded: false });
    }
  }
  return out;
}

/** Step 3's rule for one level: dummies without children removed, others replaced by their children (at the root only when one). */
function pruneLevel(list: readonly Container[], parent: Container | null): Container[] {
  const out: Container[] = [];
  for (const c of list) {
    if (c.message) out.push(c);
    else if (c.children.length === 0) continue;
    else if (parent || c.children.length === 1) {
      for (const child of c.children) child.parent = parent;
      out.push(...c.children);
    } else out.push(c);
  }
  return out;
}

/** Step 3 over the whole forest, deepest levels first (a level's dummies are pruned before they are promoted). */
function prune(roots: Container[]): Container[] {
  for (const c of postOrder(roots)) c.children = pruneLevel(c.children, c);
  return pruneLevel(roots, null);
}

type DateOf = (c: Container) => number;

/** The date and order a container sorts by: its message's, or (a dummy) its first child's. */
function first(c: Container): Container {
  return c.message ? c : first(c.children[0]!);
}

function sortSiblings(list: Container[], date: DateOf): void {
  list.sort((a, b) => date(a) - date(b) || first(a).order - first(b).order);
}

/** Every set of siblings sorted, children before their parents (a dummy sorts by its first child). */
function sortTree(list: Container[], date: DateOf): void {
  for (const c of postOrder(list)) if (c.children.length > 1) sortSiblings(c.children, date);
  sortSiblings(list, date);
}

const dateOf = (m: MessageSortData): number => m.headerDate ?? m.internalDate;
const sentDate: DateOf = (c) => dateOf(first(c).message!);

/** Step 5: roots with the same base subject merged. */
function mergeBySubject(roots: Container[]): Container[] {
  const subjects = new Map<Container, { base: string; reply: boolean }>();
  const subjectOf = (c: Container) => {
    let subject = subjects.get(c);
    if (!subject) subjects.set(c, (subject = baseSubjectOf(first(c).message!)));
    return subject;
  };
  const table = new Map<string, Container>();
  for (const c of roots) {
    const { base } = subjectOf(c);
    if (!base) continue;
    const old = table.get(base);
    if (!old || (!c.message && old.message) || (c.message && old.message && subjectOf(old).reply && !subjectOf(c).reply)) table.set(base, c);
  }
  // the root set as a list with removals marked, and replacements made in place
  const out = [...roots];
  const position = new Map<Container, number>(out.map((c, i) => [c, i]));
  const removed = new Set<Container>();
  for (const c of roots) {
    if (removed.has(c)) continue;
    const subject = subjectOf(c);
    if (!subject.base) continue;
    const old = table.get(subject.base)!;
    if (old === c) continue;
    removed.add(c);
    if (!old.message && !c.message) {
      for (const child of [...c.children]) link(old, child);
    } else if (!old.message && c.message) {
      link(old, c);
    } else if (c.message && old.message && subject.reply && !subjectOf(old).reply) {
      link(old, c);
    } else {
      const dummy = container();
      const at = position.get(old)!;
      out[at] = dummy;
      position.set(dummy, at);
      link(dummy, old);
      link(dummy, c);
      subjects.set(dummy, subjectOf(old));
      table.set(subject.base, dummy);
    }
  }
  return out.filter((c) => !removed.has(c));
}

function toNodes(list: readonly Container[]): ThreadNode[] {
  const nodes = new Map<Container, ThreadNode>();
  for (const c of postOrder(list)) nodes.set(c, { uid: c.message?.uid ?? 0, children: c.children.map((child) => nodes.get(child)!) });
  return list.map((c) => nodes.get(c)!);
}

function threadReferences(messages: readonly MessageSortData[], bySubject: boolean): ThreadNode[] {
  let roots = prune(linkByReferences(messages));
  if (bySubject) {
    sortTree(roots, sentDate);
    roots = mergeBySubject(roots);
    sortTree(roots, sentDate);
    return toNodes(roots);
  }
  // REFS: siblings by sent date, threads by the latest sent date in them
  sortTree(roots, sentDate);
  const latest = new Map<Container, number>();
  for (const c of postOrder(roots)) {
    let value = c.message ? dateOf(c.message) : -Infinity;
    for (const child of c.children) value = Math.max(value, latest.get(child)!);
    latest.set(c, value);
  }
  sortSiblings(roots, (c) => latest.get(c)!);
  return toNodes(roots);
}

function threadOrderedSubject(messages: readonly MessageSortData[]): ThreadNode[] {
  const keyed = messages.map((m, order) => ({ m, order, base: baseSubjectOf(m).base }));
  keyed.sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : dateOf(a.m) - dateOf(b.m) || a.order - b.order));
  const threads: Array<{ root: (typeof keyed)[number]; node: ThreadNode }> = [];
  for (const entry of keyed) {
    const last = threads[threads.length - 1];
    if (last && last.root.base === entry.base) last.node.children.push({ uid: entry.m.uid, children: [] });
    else threads.push({ root: entry, node: { uid: entry.m.uid, children: [] } });
  }
  threads.sort((a, b) => dateOf(a.root.m) - dateOf(b.root.m) || a.root.order - b.root.order);
  return threads.map((t) => t.node);
}

/** The threads of these messages (given in mailbox order, as sortData returns them). */
export function threadMessages(messages: readonly MessageSortData[], algorithm: ThreadAlgorithm): ThreadNode[] {
  if (algorithm === 'orderedsubject') return threadOrderedSubject(messages);
  return threadReferences(messages, algorithm === 'references');
}

/**
 * A thread as RFC 5256 writes it, numbers given by `number` (UID or sequence number): a chain of single children as
 * `(1 2 3)`, several children as nested lists `(1 (2)(3 4))`, a dummy root without a number `((1)(2))`.
 */
export function formatThread(node: ThreadNode, number: (uid: number) => number): string {
  // without recursion (a thread may nest deeper than the call stack): nodes to write and closing text, last first
  const parts: string[] = ['('];
  const stack: Array<ThreadNode | string> = [')', node];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (typeof item === 'string') {
      parts.push(item);
      continue;
    }
    let current = item;
    let first = true;
    for (;;) {
      if (current.uid !== 0) {
        parts.push(first ? String(number(current.uid)) : ` ${number(current.uid)}`);
        first = false;
      }
      if (current.children.length === 1) {
        current = current.children[0]!;
        continue;
      }
      if (current.children.length > 1) {
        if (!first) parts.push(' ');
        for (let i = current.children.length - 1; i >= 0; i--) stack.push(')', current.children[i]!, '(');
      }
      break;
    }
  }
  return parts.join('');
}
