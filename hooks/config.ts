/**
 * Server configuration: one zod schema holds every option, its default and its description. The admin's
 * `wildduck.config.ts` default-exports `defineConfig({...})`; environment variables `WILDDUCK_<PATH>` (the
 * option path in upper snake case, e.g. WILDDUCK_DATA_DIR, WILDDUCK_IMAP_PORT, WILDDUCK_API_ACCESS_TOKEN)
 * override the file. Precedence: environment > file > defaults. Bad values fail at boot with their path.
 */
import { z } from 'zod';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { ConfigError, storageConfigSchema } from '../storage/config.ts';

export { ConfigError };

const port = z.number().int().min(0).max(65535);
const MiB = 1024 * 1024;

const listenerFields = (defaults: { enabled: boolean; host: string; port: number; tlsPort: number | null }) => ({
  enabled: z.boolean().default(defaults.enabled).describe('Start this listener.'),
  host: z.string().default(defaults.host).describe('Address to bind.'),
  port: port.default(defaults.port).describe('Plaintext port (STARTTLS offered when TLS is configured).'),
  tlsPort: port.nullable().default(defaults.tlsPort).describe('Implicit-TLS port; null switches it off.'),
  proxyProtocol: z.boolean().default(false).describe('Expect a PROXY protocol v1/v2 header on every connection (behind a load balancer).'),
  maxConnectionsPerIp: z.number().int().positive().default(100).describe('Concurrent connections from one client address.'),
  maxConnections: z
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe('Open connections of this protocol (plaintext and TLS port together, handshaking ones included); more are dropped at accept.'),
  handshakeTimeoutSeconds: z.number().int().positive().default(15).describe('Time for the PROXY header and the TLS handshake of a new connection.'),
  idleTimeoutSeconds: z.number().int().positive().default(1800).describe('Disconnect a client idle this long (RFC 3501: at least 30 minutes for IMAP).'),
  commandTimeoutSeconds: z
    .number()
    .int()
    .positive()
    .default(120)
    .describe('Time a client has to send one command, from its first byte (literals and LMTP DATA get more: see minBytesPerSecond).'),
  minBytesPerSecond: z
    .number()
    .int()
    .nonnegative()
    .default(4096)
    .describe('Each byte of a command received adds 1/minBytesPerSecond seconds to commandTimeoutSeconds, so uploads at least this fast are never cut off; 0 = fixed budget.'),
  maxLineLength: z.number().int().min(1024).default(65536).describe('Longest command line accepted, enforced while reading.'),
  maxBadCommands: z.number().int().positive().default(20).describe('Syntax errors before the server says BYE and closes.'),
});

/** A plugin entry: a built-in plugin's name, `[name, options]`, or a plugin object/instance of your own. */
const pluginEntry = z.union([
  z.string(),
  z.tuple([z.string(), z.record(z.string(), z.unknown())]),
  // [name, false]: switch off a plugin the server loads by default (e.g. ['quota', false])
  z.tuple([z.string(), z.literal(false)]),
  z.custom<{ name: string; apply: (...args: never[]) => unknown }>(
    (v) => typeof v === 'object' && v !== null && typeof (v as { name?: unknown }).name === 'string' && typeof (v as { apply?: unknown }).apply === 'function',
    { message: 'expected a plugin name, [name, options], or an object with name and apply()' },
  ),
]);

export const configSchema = z
  .object({
    dataDir: z.string().default('./data').describe('Directory for the embedded database, blobs and generated certificates.'),

    // defined with storage (storage/config.ts), which reads it without importing hooks/
    storage: storageConfigSchema,

    server: z
      .object({
        workers: z
          .number()
          .int()
          .min(0)
          .max(256)
          .default(0)
          .describe(
            'Worker processes serving every listener (Node.js, node:cluster; the primary process shares counters, locks and pub/sub between them). 0 = one per CPU core; 1 = a single process. Deno always runs a single process.',
          ),
        connections: z
          .enum(['primary', 'kernel'])
          .default('primary')
          .describe(
            'How new connections reach the workers. "primary": the primary accepts them and hands them out in turn (even spread; about a millisecond and two IPC messages per connection on a loaded 2-core machine). "kernel": every worker accepts on the shared socket (node:cluster SCHED_NONE): no hop through the primary, but an idle worker may take a burst of connections alone.',
          ),
        restartDelayMs: z.number().int().nonnegative().default(1000).describe('Wait before restarting a worker that died (doubles while workers keep dying, up to 30 s).'),
        stopTimeoutSeconds: z.number().int().positive().default(30).describe('At shutdown, workers still running after this long are killed.'),
        memorySettle: z
          .object({
            enabled: z
              .boolean()
              .default(true)
              .describe(
                'After the start and after a burst (a login storm), once a process is quiet, run one full garbage collection so V8 compacts its heap and returns the pages within seconds instead of up to 100 s (or never, after a small burst). Node.js only (the collector is exposed at run time); Deno does without.',
              ),
            growthMb: z.number().int().positive().default(16).describe('Heap growth (MiB) since the last settle that calls for one.'),
            checkSeconds: z.number().int().positive().default(5).describe('How often a process looks; it settles only when its event loop was busy less than 5 % of the last interval.'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),

    log: z
      .object({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info').describe('Lowest level written.'),
        format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('"auto": pretty on a terminal, JSON lines otherwise.'),
      })
      .strict()
      .prefault({}),

    hooks: z
      .object({
        timeoutMs: z.number().int().positive().default(10_000).describe('A tap that takes longer fails the operation with a temporary failure.'),
        trace: z.boolean().default(false).describe('Log every tap call with its duration (debug level).'),
      })
      .strict()
      .prefault({}),

    limits: z
      .object({
        maxMessageSize: z.number().int().positive().default(64 * MiB).describe('Largest message accepted by any way in (bytes).'),
        blobThreshold: z.number().int().positive().default(16 * 1024).describe('MIME leaf bodies larger than this are stored as shared, compressed blobs.'),
        spoolMemoryBytes: z
          .number()
          .int()
          .nonnegative()
          .default(MiB)
          .describe('An incoming message (IMAP APPEND literal, LMTP DATA) up to this size is received in memory; a larger one is spooled to a file while it arrives (LMTP) or parsed while it arrives, straight from the connection (IMAP APPEND) (bytes).'),
        searchTextLimit: z.number().int().positive().default(256 * 1024).describe('Most decoded text kept per message for search (characters).'),
        maxHeaderBytes: z.number().int().positive().default(MiB).describe('Largest header block parsed as headers (bytes); the bytes are kept anyway.'),
        maxHtmlDepth: z
          .number()
          .int()
          .positive()
          .default(256)
          .describe('HTML nested deeper than this (elements) is tag-stripped instead of parsed, for search text, filters and the HTTP message views (deep nesting makes HTML parsing superlinear).'),
      })
      .strict()
      .prefault({}),

    users: z
      .object({
        quota: z
          .object({
            storage: z.number().int().nonnegative().nullable().default(null).describe('Default storage quota in bytes; null = unlimited.'),
            messages: z.number().int().nonnegative().nullable().default(null).describe('Default message-count quota; null = unlimited.'),
          })
          .strict()
          .prefault({}),
        limits: z
          .object({
            imapDownloadBytesPerDay: z.number().int().nonnegative().nullable().default(null).describe('Message bytes a user may download over IMAP (FETCH bodies) per day; null = unlimited.'),
            imapUploadBytesPerDay: z.number().int().nonnegative().nullable().default(null).describe('Message bytes a user may upload over IMAP (APPEND) per day; null = unlimited.'),
            pop3DownloadBytesPerDay: z.number().int().nonnegative().nullable().default(null).describe('Message bytes a user may download over POP3 (RETR, TOP) per day; null = unlimited.'),
          })
          .strict()
          .prefault({}),
        mailboxes: z
          .object({
            drafts: z.string().default('Drafts'),
            sent: z.string().default('Sent Mail'),
            trash: z.string().default('Trash'),
            junk: z.string().default('Junk'),
          })
          .strict()
          .prefault({})
          .describe('Names of the special-use mailboxes every new user gets (INBOX is always INBOX).'),
      })
      .strict()
      .prefault({}),

    auth: z
      .object({
        allowPlaintext: z.boolean().default(false).describe('Allow passwords over unencrypted connections from non-loopback clients.'),
        failedLogins: z
          .object({
            perUser: z.number().int().positive().default(10).describe('Failed logins per account (every name of it; per login name for unknown names) within the window before logins are refused; attempts in progress count too.'),
            perIp: z.number().int().positive().default(30).describe('Failed logins per client address within the window before logins are refused; attempts in progress count too.'),
            perNetwork: z.number().int().positive().default(100).describe('Failed logins per client network (IPv4 /24, IPv6 /64) within the window before logins are refused; attempts in progress count too.'),
            windowSeconds: z.number().int().positive().default(900).describe('Counting window for failed logins.'),
            delayMs: z.number().int().nonnegative().default(1000).describe('Delay before answering a failed login.'),
            maxWaitMs: z.number().int().nonnegative().default(3000).describe('When attempts in progress (not failures) fill a budget, wait this long for them to finish before answering "try again later".'),
          })
          .strict()
          .prefault({}),
        passwordChecks: z
          .object({
            concurrency: z.number().int().positive().default(2).describe('Password hashes (scrypt) computed at once; Node runs them on the libuv thread pool (4 threads unless UV_THREADPOOL_SIZE says otherwise), shared with file access.'),
            maxQueue: z.number().int().nonnegative().default(200).describe('Password checks waiting, all clients together; beyond it a login gets a temporary failure.'),
            maxQueuePerClient: z.number().int().nonnegative().default(16).describe('Password checks waiting for one client network (IPv4 /24, IPv6 /64); waiting networks are served round-robin.'),
            cacheSeconds: z.number().int().nonnegative().default(60).describe('Remember a successful password check (an HMAC of user, hash and password) this long, so reconnecting clients skip scrypt; 0 = off.'),
            cacheEntries: z.number().int().nonnegative().default(10000).describe('Most successful checks remembered.'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),

    tls: z
      .object({
        key: z.string().nullable().default(null).describe('PEM private key file; null = self-signed certificate generated in dataDir.'),
        cert: z.string().nullable().default(null).describe('PEM certificate chain file.'),
      })
      .strict()
      .prefault({}),

    imap: z
      .object({
        ...listenerFields({ enabled: true, host: '0.0.0.0', port: 1143, tlsPort: 1993 }),
        maxConnectionsPerUser: z.number().int().positive().default(15).describe('Concurrent IMAP sessions per user.'),
        preAuthIdleTimeoutSeconds: z
          .number()
          .int()
          .positive()
          .default(180)
          .describe('Idle timeout before login (RFC 9051 §5.4 lets it be shorter than the 30 minutes after login).'),
        idleCommandTimeoutSeconds: z
          .number()
          .int()
          .positive()
          .default(1800)
          .describe('An IDLE command with no input from the client for this long ends with BYE (RFC 2177: clients re-issue IDLE within 29 minutes).'),
        maxArguments: z
          .number()
          .int()
          .positive()
          .default(1000)
          .describe('Most arguments (atoms, strings, literals, lists, nested ones included) in one command: bounds search keys, fetch items and flags; BAD [LIMIT] beyond it.'),
        maxPreAuthLiteralSize: z
          .number()
          .int()
          .positive()
          .default(4096)
          .describe('Largest literal (all of one command\'s together) accepted before login: LOGIN credentials; more is refused before any byte is read.'),
        maxLiteralSize: z.number().int().positive().default(65536).describe('Largest literal outside APPEND (APPEND takes up to limits.maxMessageSize).'),
        literalMinus: z
          .boolean()
          .default(false)
          .describe('Announce LITERAL- instead of LITERAL+ (RFC 7888): non-synchronizing literals over 4096 bytes get BAD [TOOBIG] (read and discarded up to maxLiteralSize, else the session closes).'),
        idleRestartSeconds: z.number().int().positive().default(29 * 60).describe('IDLE sessions get a keep-alive at most this far apart.'),
        maxListPatternLength: z
          .number()
          .int()
          .positive()
          .default(1024)
          .describe('LIST/LSUB: most characters of reference + pattern, summed over the patterns of one command; more get NO [LIMIT].'),
        autoSubscribe: z
          .boolean()
          .default(false)
          .describe('CREATE (and RENAME of INBOX) also subscribes the new mailbox and the parent levels it creates. Off by default, like Dovecot: clients that manage subscriptions see only what they subscribed. The special-use mailboxes made for a new user are subscribed either way.'),
      })
      .strict()
      .prefault({})
      .describe('IMAP listeners.'),
    pop3: z
      .object({
        ...listenerFields({ enabled: true, host: '0.0.0.0', port: 1110, tlsPort: 1995 }),
        preAuthIdleTimeoutSeconds: z
          .number()
          .int()
          .positive()
          .default(600)
          .describe('Idle timeout before login (RFC 1939 §3 asks for at least 10 minutes).'),
        deleteMode: z.enum(['trash', 'expunge']).default('trash').describe('What QUIT does with DELE\'d messages: move them to Trash (as WildDuck does) or expunge them.'),
        maxMessages: z.number().int().positive().default(250).describe('Only the newest this many INBOX messages are listed in a POP3 session.'),
      })
      .strict()
      .prefault({})
      .describe('POP3 listeners.'),
    lmtp: z
      .object({
        ...listenerFields({ enabled: true, host: '127.0.0.1', port: 2424, tlsPort: null }),
        maxRecipients: z.number().int().positive().default(1000).describe('Recipients accepted per LMTP transaction; more get 452 4.5.3.'),
      })
      .strict()
      .prefault({})
      .describe('LMTP listener (loopback by default).'),
    delivery: z
      .object({
        duplicateWindowSeconds: z
          .number()
          .int()
          .nonnegative()
          .default(3600)
          .describe('The same Message-ID delivered to the same user again within this window is accepted but stored once; 0 disables.'),
        spamHeader: z
          .string()
          .default('X-Spam-Status')
          .describe('Header the MTA\'s spam scanner adds ("Yes, score=…", rspamd actions); spam goes to Junk.'),
        relay: z
          .object({
            host: z.string().nullable().default(null).describe('Outbound SMTP relay for submitted mail (HTTP submit), forwarding and autoreplies; null = send nothing.'),
            port: port.default(25),
            secure: z.boolean().default(false).describe('Implicit TLS to the relay (STARTTLS is used when offered either way).'),
            user: z.string().nullable().default(null),
            password: z.string().nullable().default(null),
          })
          .strict()
          .prefault({}),
        forwardLimitPerDay: z.number().int().nonnegative().default(1000).describe('Messages forwarded per user per 24 hours.'),
        maxHops: z.number().int().positive().default(25).describe('Messages with this many Delivered-To/Received headers are not forwarded (loop protection).'),
        autoreplyIntervalSeconds: z.number().int().positive().default(4 * 3600).describe('At most one autoreply per sender per user within this interval.'),
      })
      .strict()
      .prefault({})
      .describe('Mail delivery to local users (LMTP, HTTP).'),
    api: z
      .object({
        enabled: z.boolean().default(true).describe('Start the HTTP API.'),
        host: z.string().default('127.0.0.1').describe('Address to bind.'),
        port: port.default(8080).describe('HTTP port.'),
        accessToken: z.string().nullable().default(null).describe('Root access token; null = no token required from loopback.'),
        loopbackIsRoot: z
          .boolean()
          .default(true)
          .describe('With no accessToken set, treat requests from loopback addresses without a token as root. Off: root access needs accessToken.'),
        tokenTtlSeconds: z.number().int().positive().default(24 * 3600).describe('Lifetime of per-user access tokens issued by POST /authenticate.'),
        maxBodyBytes: z.number().int().positive().default(MiB).describe('Largest JSON request body, enforced while reading (413 beyond it).'),
        maxParsedBytes: z
          .number()
          .int()
          .positive()
          .default(4 * MiB)
          .describe('Most bytes of text parts read to show one message as JSON (text, html); attachments are never read for it.'),
        sseKeepAliveSeconds: z.number().int().positive().default(15).describe('Seconds between keep-alive comments on GET /users/:user/updates.'),
      })
      .strict()
      .prefault({}),

    plugins: z.array(pluginEntry).default([]).describe('Plugins in load order: built-in names, [name, options], or your own plugin objects.'),
  })
  .strict();

/** The fully resolved configuration (every option present). */
export type Config = z.output<typeof configSchema>;
/** What an admin writes: every option optional. */
export type ConfigInput = z.input<typeof configSchema>;
export type PluginEntry = z.output<typeof pluginEntry>;

/** Typed identity helper for `wildduck.config.ts`. */
export function defineConfig(config: ConfigInput): ConfigInput {
  return config;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

/** Validates and fills defaults. Throws ConfigError naming the first bad option. */
export function resolveConfig(input: unknown): Config {
  const result = configSchema.safeParse(input ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ConfigError(formatPath(issue.path), issue.message);
  }
  return result.data;
}

/** `imap.tlsPort` → `WILDDUCK_IMAP_TLS_PORT`. */
export function envName(path: string[]): string {
  return 'WILDDUCK_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

function parseEnvValue(raw: string, sample: unknown, name: string): unknown {
  if (typeof sample === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new ConfigError(name, `expected a number, got "${raw}"`);
    return n;
  }
  if (typeof sample === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new ConfigError(name, `expected true or false, got "${raw}"`);
  }
  if (sample === null) {
    if (raw === '' || raw === 'null') return null;
    if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
    return raw;
  }
  return raw;
}

/** Applies WILDDUCK_* variables on top of `input`, for every scalar option the schema knows. */
export function applyEnv(input: ConfigInput, env: Record<string, string | undefined>): ConfigInput {
  const defaults = resolveConfig({}) as unknown as Record<string, unknown>;
  const out = structuredCloneConfig(input) as Record<string, unknown>;
  const walk = (node: Record<string, unknown>, path: string[]) => {
    for (const [key, sample] of Object.entries(node)) {
      const p = [...path, key];
      if (sample !== null && typeof sample === 'object' && !Array.isArray(sample)) {
        walk(sample as Record<string, unknown>, p);
        continue;
      }
      if (Array.isArray(sample)) continue; // plugins: file only
      const name = envName(p);
      const raw = env[name];
      if (raw === undefined) continue;
      let target = out;
      for (const seg of p.slice(0, -1)) {
        if (target[seg] === undefined || target[seg] === null || typeof target[seg] !== 'object') target[seg] = {};
        target = target[seg] as Record<string, unknown>;
      }
      target[p[p.length - 1]!] = parseEnvValue(raw, sample, name);
    }
  };
  walk(defaults, []);
  return out as ConfigInput;
}

function structuredCloneConfig(input: ConfigInput): unknown {
  // plugins may hold class instances: copy plain objects only, keep everything else by reference
  const copy = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(copy);
    if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)]));
    }
    return v;
  };
  return copy(input ?? {});
}

/**
 * Loads a config file (default-exporting defineConfig(...) or a plain object), applies the environment and
 * validates. With no file, defaults + environment.
 */
export async function loadConfig(file: string | null, env: Record<string, string | undefined>): Promise<{ config: Config; file: string | null }> {
  let input: ConfigInput = {};
  let used: string | null = null;
  if (file) {
    used = resolve(file);
    let mod: { default?: ConfigInput };
    try {
      mod = (await import(pathToFileURL(used).href)) as { default?: ConfigInput };
    } catch (err) {
      throw new ConfigError('', `cannot load ${used}: ${(err as Error).message}`);
    }
    input = mod.default ?? {};
  }
  const config = resolveConfig(applyEnv(input, env));
  return { config, file: used };
}
