/** Types for the part of utf7 (no bundled types) that hooks/imap-wire.ts uses: modified UTF-7 of mailbox names. */
declare module 'utf7' {
  interface Utf7Codec {
    encode(text: string): string;
    decode(text: string): string;
  }
  const utf7: Utf7Codec & { imap: Utf7Codec };
  export default utf7;
}
