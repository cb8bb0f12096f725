/**
 * Built-in plugins by name, for `config.plugins` entries written as `'name'` or `['name', options]`. The storage
 * plugin is not listed: the host always loads it itself (protocols/app.ts).
 */
import type { PluginRegistry } from '../hooks/host.ts';
import { quotaPlugin } from './quota.ts';
import { spamRoutingPlugin } from './spam-routing.ts';
import { listStatusPlugin } from './list-status.ts';
import { junkNotifyPlugin } from './junk-notify.ts';
import { sentAutosavePlugin } from './sent-autosave.ts';
import { rewritePlugin } from './rewrite.ts';
import { submissionPlugin } from './submission.ts';
import { imapEsortPlugin } from './imap-esort.ts';
import { imapSortPlugin } from './imap-sort.ts';
import { imapThreadPlugin } from './imap-thread.ts';

export const builtinPlugins: PluginRegistry = Object.freeze({
  quota: quotaPlugin,
  'spam-routing': spamRoutingPlugin,
  'list-status': listStatusPlugin,
  'junk-notify': junkNotifyPlugin,
  'sent-autosave': sentAutosavePlugin,
  rewrite: rewritePlugin,
  submission: submissionPlugin,
  'imap-sort': imapSortPlugin,
  'imap-esort': imapEsortPlugin,
  'imap-thread': imapThreadPlugin,
});
