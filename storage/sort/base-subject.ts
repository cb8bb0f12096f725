/**
 * The base subject of RFC 5256 §2.1, which SORT SUBJECT and THREAD compare: the decoded Subject with whitespace
 * collapsed, `Re:` / `Fw:` / `Fwd:` leaders, `[blob]` prefixes, `(fwd)` trailers and `[fwd: ...]` wrappers removed,
 * in the i;unicode-casemap form the comparison uses (casemap). `reply` tells whether anything marking a reply or
 * forward was removed (THREAD=REFERENCES step 5 uses it).
 */

export interface BaseSubject {
  base: string;
  reply: boolean;
}

/** subj-blob = "[" *BLOBCHAR "]" *WSP, BLOBCHAR = %x01-5a / %x5c / %x5e-7f */
const BLOB = String.raw`\[[\x01-\x5a\x5c\x5e-\x7f]*\][ \t]*`;
/** subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" after *subj-blob (subj-leader's first form). */
const REFWD_LEADER = new RegExp(String.raw`^(?:${BLOB})*(?:re|fwd?)[ \t]*(?:${BLOB})?:`, 'i');
const BLOB_PREFIX = new RegExp(`^${BLOB}`);

/**
 * The comparison form of a sort string: i;unicode-casemap, as I18NLEVEL=1 asks of SORT and THREAD (RFC 5256 §1,
 * RFC 5051): compatibility-decomposed and upper-cased (ASCII alone: just upper-cased).
 */
export function casemap(text: string): string {
  return /[^\x00-\x7f]/.test(text) ? text.normalize('NFKD').toUpperCase() : text.toUpperCase();
}

export function baseSubject(subject: string | null | undefined): BaseSubject {
  // (1) decoded already (stored that way); tabs and runs of whitespace become one space
  let text = (subject ?? '').replace(/[ \t\r\n]+/g, ' ');
  let reply = false;
  for (;;) {
    // (2) trailers: whitespace and "(fwd)"
    for (;;) {
      if (text.endsWith(' ')) text = text.slice(0, -1);
      else if (/\(fwd\)$/i.test(text)) {
        text = text.slice(0, -5);
        reply = true;
      } else break;
    }
    // (3)-(5) leaders and blob prefixes
    for (;;) {
      if (text.startsWith(' ')) {
        text = text.slice(1);
        continue;
      }
      const leader = REFWD_LEADER.exec(text);
      if (leader) {
        text = text.slice(leader[0].length);
        reply = true;
        continue;
      }
      const blob = BLOB_PREFIX.exec(text);
      if (blob && /[^ \t]/.test(text.slice(blob[0].length))) {
        text = text.slice(blob[0].length);
        continue;
      }
      break;
    }
    // (6) "[fwd: ... ]" around the rest: unwrap and start again
    if (/^\[fwd:/i.test(text) && text.endsWith(']')) {
      text = text.slice(5, -1);
      reply = true;
      continue;
    }
    break;
  }
  return { base: casemap(text), reply };
}
