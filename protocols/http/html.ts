/**
 * Message HTML made safe to show in a webmail: sanitize-html with an allow-list of formatting tags and
 * attributes. Scripts, event handlers, forms, frames, `<style>` blocks and `javascript:` URLs are gone; remote
 * resources (images, backgrounds, `url(...)` in styles) are removed unless the caller asked for them, so
 * opening a message never tells the sender it was read. `cid:` images are kept (or, with `cidLinks`, rewritten
 * to `attachment:ATT00001`, as WildDuck does), links open in a new window without a referrer.
 */
import sanitizeHtml from 'sanitize-html';
import { DEFAULT_MAX_HTML_DEPTH, htmlNestedDeeperThan, stripTags } from '../../storage/mime/html-depth.ts';

export interface SanitizeOptions {
  /** Keep http(s) images and backgrounds. */
  allowRemote: boolean;
  /** Content-ID → attachment id: `cid:` references are rewritten to `attachment:<id>`. */
  cidLinks?: ReadonlyMap<string, string>;
  /** HTML nested deeper than this is shown as its escaped text (limits.maxHtmlDepth; html-depth.ts). */
  maxDepth?: number;
}

export interface SanitizedHtml {
  html: string;
  /** True when remote resources were removed. */
  remoteBlocked: boolean;
}

const TAGS = [
  ...sanitizeHtml.defaults.allowedTags,
  'img', 'font', 'center', 'span', 'div', 'u', 's', 'strike', 'big', 'small', 'sub', 'sup', 'hr', 'br',
  'table', 'thead', 'tbody', 'tfoot', 'tr', 'td', 'th', 'caption', 'colgroup', 'col',
].filter((tag) => tag !== 'style');

const COMMON = ['style', 'class', 'align', 'valign', 'width', 'height', 'bgcolor', 'background', 'color', 'dir', 'lang', 'title', 'border', 'cellpadding', 'cellspacing', 'colspan', 'rowspan', 'nowrap'];

const REMOTE = /^\s*(https?:)?\/\//i;
/** CSS that runs code or loads more CSS: removed even with allowRemote. */
const UNSAFE_CSS = /@import|expression\s*\(|behavior\s*:|-moz-binding|javascript:/i;

function cidTarget(value: string, cidLinks: ReadonlyMap<string, string> | undefined): string {
  if (!cidLinks || !/^cid:/i.test(value)) return value;
  const id = cidLinks.get(decodeURIComponent(value.slice(4)).trim());
  return id ? `attachment:${id}` : value;
}

export function sanitizeMessageHtml(html: string, options: SanitizeOptions): SanitizedHtml {
  if (htmlNestedDeeperThan(html, options.maxDepth ?? DEFAULT_MAX_HTML_DEPTH)) {
    // the parser is superlinear in nesting: such HTML is shown as its text
    const text = stripTags(html).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
    return { html: `<div>${text}</div>`, remoteBlocked: false };
  }
  let remoteBlocked = false;
  const clean = sanitizeHtml(html, {
    allowedTags: TAGS,
    allowedAttributes: {
      '*': COMMON,
      a: ['href', 'name', 'target', 'rel'],
      img: ['src', 'alt', 'width', 'height', 'border'],
      font: ['face', 'size', 'color'],
      ol: ['start', 'type'],
      td: [...COMMON],
      th: [...COMMON],
    },
    allowedSchemes: ['http', 'https', 'mailto', 'tel'],
    allowedSchemesByTag: { img: ['http', 'https', 'cid', 'data', 'attachment'] },
    allowProtocolRelative: true,
    parseStyleAttributes: false,
    nonTextTags: ['style', 'script', 'textarea', 'option', 'noscript', 'title', 'head'],
    transformTags: {
      '*': (tagName, attribs) => {
        const out = { ...attribs };
        if (out.style !== undefined) {
          if (UNSAFE_CSS.test(out.style)) delete out.style;
          else if (/url\s*\(/i.test(out.style) && !options.allowRemote) {
            remoteBlocked = true;
            delete out.style;
          }
        }
        if (out.background !== undefined && REMOTE.test(out.background) && !options.allowRemote) {
          remoteBlocked = true;
          delete out.background;
        }
        if (tagName === 'img' && out.src !== undefined) {
          if (REMOTE.test(out.src) && !options.allowRemote) {
            remoteBlocked = true;
            delete out.src;
          } else {
            out.src = cidTarget(out.src, options.cidLinks);
          }
        }
        if (tagName === 'a' && out.href !== undefined) {
          out.target = '_blank';
          out.rel = 'noopener noreferrer';
        }
        return { tagName, attribs: out };
      },
    },
  });
  return { html: clean, remoteBlocked };
}
