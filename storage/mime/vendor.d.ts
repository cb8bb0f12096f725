/** Types for the part of html-to-text (no bundled types) that storage/mime and the HTTP message view use. */
declare module 'html-to-text' {
  export interface HtmlToTextOptions {
    wordwrap?: number | false | null;
    selectors?: Array<{ selector: string; format?: string; options?: Record<string, unknown> }>;
    [option: string]: unknown;
  }
  export function convert(html: string, options?: HtmlToTextOptions): string;
  /** Options compiled once into a converter (what `convert` does on every call). */
  export function compile(options?: HtmlToTextOptions): (html: string) => string;
}
