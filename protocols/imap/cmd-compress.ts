/**
 * COMPRESS (RFC 4978): `COMPRESS DEFLATE` after login switches the connection to raw deflate both ways, right after
 * the tagged OK (which goes out uncompressed); a second COMPRESS gets `NO [COMPRESSIONACTIVE]`. The stream itself is
 * protocols/net/deflate-socket.ts (the inflated input is bounded like any other input); the session swaps it in.
 *
 *   C: A1 COMPRESS DEFLATE
 *   S: A1 OK DEFLATE active
 *   (both sides compress from here on)
 */
import { AUTHENTICATED, command } from './command.ts';
import { bad, no, ok } from './responses.ts';

export const compress = command({
  name: 'COMPRESS',
  states: AUTHENTICATED,
  parse(args) {
    const mechanism = args.atom('compression mechanism').toUpperCase();
    args.end();
    return mechanism;
  },
  async run(session, mechanism) {
    if (!session.app.config.imap.compress) return bad('COMPRESS is not offered'); // imap.compress: false
    if (session.compressed) return no('DEFLATE active already', 'COMPRESSIONACTIVE');
    if (mechanism !== 'DEFLATE') return bad(`Unknown compression mechanism ${mechanism.slice(0, 30)}`);
    return { ...ok('DEFLATE active'), after: () => session.startCompression() };
  },
});
