/**
 * NOTIFY (RFC 5465): `NOTIFY SET [STATUS] event-group...` replaces the session's notifier (notify.ts) and, with
 * STATUS, answers the watched mailboxes' STATUS first; `NOTIFY NONE` stops it. An event this server does not offer
 * gets `NO [BADEVENT (supported events)]` and changes nothing.
 */
import { AUTHENTICATED, command } from './command.ts';
import { Notifier, SUPPORTED_EVENTS, parseNotify } from './notify.ts';
import { no, ok } from './responses.ts';

export const notifyCommand = command({
  name: 'NOTIFY',
  states: AUTHENTICATED,
  parse: parseNotify,
  async run(session, request) {
    if (request.set && request.unsupported.length > 0) return no('Unsupported NOTIFY event', `BADEVENT (${SUPPORTED_EVENTS.join(' ')})`);
    session.setNotifier(null);
    if (!request.set) return ok('NOTIFY completed');
    session.setNotifier(await Notifier.start(session, request.groups, request.status));
    return ok('NOTIFY completed');
  },
});
