/**
 * Server configuration. Every option is shown with its default; delete what you don't change.
 * Any scalar option can also be set by an environment variable WILDDUCK_<OPTION_PATH> in upper snake case
 * (WILDDUCK_DATA_DIR, WILDDUCK_IMAP_PORT, WILDDUCK_API_ACCESS_TOKEN, ...): environment beats this file,
 * this file beats the defaults. Select another file with `wildduck start --config FILE`.
 */
import { defineConfig } from './hooks/config.ts';

export default defineConfig({
  // Directory for the embedded database (wildduck.sqlite), attachment blobs and generated certificates.
  dataDir: './data',

  storage: {
    // 'sqlite': embedded, one file, no server to install (one node).
    // 'mongodb': MongoDB + Redis, for any number of stateless server instances (storage/mongodb/README.md).
    backend: 'sqlite',
    sqlite: {
      // 'full' fsyncs every commit so an acknowledged message survives power loss; 'normal' survives crashes only.
      synchronous: 'full',
      // 'optimized': changes that carry no new mail (flags, EXPUNGE, COPY, MOVE) are acknowledged once in the WAL,
      // made durable by the next fsync (a new message's, or orderedSyncDelayMs later): a power cut may undo the
      // latest of them, never lose mail. 'always': each of them waits for its own fsync.
      fsyncMode: 'optimized',
      orderedSyncDelayMs: 1000,
      // Attachment bytes held in memory (all deliveries together) until their hash is known: one already stored
      // is then never compressed or written again. More than this streams to a staging file.
      blobMemoryBytes: 64 * 1024 * 1024,
      // How long a write waits for the database lock another process (a worker, the CLI) holds (ms).
      busyTimeoutMs: 10_000,
      // Write-ahead-log pages (4 KiB) before a commit copies them into the database file (0 = never); the WAL
      // file stays on disk at up to this size. 10,000 makes commits under a write-heavy IMAP load cheaper (fewer
      // checkpoints) at the price of a 40 MB WAL file.
      walAutocheckpointPages: 1_000,
      // Bytes of the database file read through a memory map (0 = off): shared between worker processes, and
      // a commit by one worker no longer costs the others a read() per page they look at again.
      mmapBytes: 256 * 1024 * 1024,
      // Recently read message bytes each process keeps inflated, so sessions fetching the same messages inflate
      // each once (0 = inflate on every read).
      inflatedCacheBytes: 8 * 1024 * 1024,
      // Search text enters the full-text indexes after the acknowledgement, this many messages per transaction,
      // this long after the first (ms); until then a search reads those messages' stored text. Expunged messages
      // leave the indexes the same way. Batches of several messages cost a fraction of one each.
      searchIndexBatch: 64,
      searchIndexDelayMs: 500,
      // With worker processes: one more process writes the search indexes and checkpoints the WAL for all of them
      // (polling every searchIndexDelayMs), this many messages per transaction (each holds the write lock), once
      // no worker committed for maintenanceQuietMs, or maintenanceMaxDeferMs after it found the work.
      maintenanceProcess: true,
      maintenanceIndexBatch: 16,
      maintenanceQuietMs: 100,
      maintenanceMaxDeferMs: 5_000,
    },
    mongodb: {
      // Connection string of a replica set or mongos (user, password, authSource, replicaSet, TLS options in it).
      url: 'mongodb://127.0.0.1:27017/wildduck',
      // Database name; '' = the one in the URL's path, else 'wildduck'.
      database: '',
      // A message is acknowledged once a majority of the replica set has it in its journal; a write that cannot
      // get that within writeConcernTimeoutMs fails with a temporary error.
      writeConcern: 'majority',
      journal: true,
      writeConcernTimeoutMs: 10_000,
      // 'primary' reads what was just written; a secondary may show a session data older than its own writes.
      readPreference: 'primary',
      connectTimeoutMs: 5000,
      // An unreachable MongoDB stops the start after this long; while running, commands fail with a temporary error.
      serverSelectionTimeoutMs: 5000,
      maxPoolSize: 100,
      // How long a change-log reader waits for an entry another instance may still be writing.
      gapWaitMs: 10_000,
      // `quota recalc` removes what a crashed write left only when older than this (never a write under way).
      orphanAgeMs: 600_000,
    },
    // Where counters, rate limits, locks (POP3 maildrop), \Recent marks, per-user connection counts and change
    // notifications live: 'memory' (in the server; the primary shares it with its workers) or 'redis' (storage.redis,
    // shared by every server instance using the same Redis and key prefix; every process talks to Redis itself).
    ephemeral: 'memory',
    redis: {
      // redis:// or rediss:// (TLS); user, password and database number in the URL.
      url: 'redis://127.0.0.1:6379/3',
      // Before every key and channel: give each deployment sharing one Redis its own. With cluster, made a hash tag.
      keyPrefix: 'wd:',
      // Connecting may take this long (at start: the server stops with an error naming Redis).
      connectTimeoutMs: 5000,
      // A command unanswered this long fails with a temporary error to the client (IMAP NO [UNAVAILABLE], ...).
      commandTimeoutMs: 2000,
      // Redis Sentinel: [{ host, port }, ...] and the master group's name. Empty: no Sentinel.
      sentinels: [],
      name: 'mymaster',
      // Redis Cluster: nodes to discover it from, [{ host, port }, ...]. Empty: no Cluster.
      cluster: [],
    },
    mailboxIndex: {
      // Seconds the shared index of a mailbox (one per process, used by every session that has it selected) stays
      // in memory after its last session left, so a re-SELECT is instant; 0 = drop it with the last session.
      lingerSeconds: 60,
      // Most such indexes kept with no session holding them (oldest dropped first).
      maxLingering: 200,
      // Most messages whose SORT / THREAD data (subject, dates, first addresses, message ids) one process keeps for
      // every session, so a SORT or THREAD reads storage only for messages not held yet; 0 = keep none.
      sortCacheMessages: 200_000,
    },
  },

  server: {
    // Worker processes serving every listener (Node.js): 0 = one per CPU core, 1 = a single process.
    // The primary process supervises them (restarts a worker that dies) and holds the counters, locks and
    // pub/sub they share; all of them use the one SQLite file. Deno always runs a single process.
    workers: 0,
    // 'primary': the primary accepts connections and hands them out in turn; 'kernel': every worker accepts on the
    // shared socket (no hop through the primary, but an idle worker may take a burst of connections alone).
    connections: 'primary',
    // Wait before restarting a worker that died (doubles while workers keep dying, up to 30 s).
    restartDelayMs: 1000,
    // At shutdown, workers still running after this long are killed.
    stopTimeoutSeconds: 30,
  },

  log: {
    // trace | debug | info | warn | error | silent
    level: 'info',
    // auto (pretty on a terminal, JSON lines otherwise) | json | pretty
    format: 'auto',
  },

  hooks: {
    // A plugin tap that takes longer fails that one operation with a temporary failure.
    timeoutMs: 10_000,
    // Log every tap call with its duration (at debug level).
    trace: false,
  },

  limits: {
    // Largest message accepted by any way in (IMAP APPEND, LMTP, HTTP upload), in bytes.
    maxMessageSize: 64 * 1024 * 1024,
    // MIME leaf bodies larger than this are stored once per distinct content as compressed blobs.
    blobThreshold: 16 * 1024,
    // An incoming message (IMAP APPEND literal, LMTP DATA) up to this size is received in memory, a larger one is
    // spooled to a file while it arrives (LMTP) or parsed while it arrives (IMAP APPEND).
    spoolMemoryBytes: 1024 * 1024,
    // Most decoded text kept per message for search, in characters.
    searchTextLimit: 256 * 1024,
    // Largest header block parsed as headers; larger ones are kept as bytes but not parsed.
    maxHeaderBytes: 1024 * 1024,
    // HTML nested deeper than this is tag-stripped instead of parsed (search text, filters, HTTP views):
    // deep nesting makes HTML parsing superlinear.
    maxHtmlDepth: 256,
  },

  users: {
    // Default quotas for new users (null = unlimited); per-user overrides with `wildduck user add --quota`.
    quota: { storage: null, messages: null },
    // Daily transfer limits per user in bytes (null = unlimited), enforced by the quota plugin: IMAP FETCH of
    // message bodies, IMAP APPEND, POP3 RETR/TOP, each counted for a day from its first counted transfer
    // (as WildDuck's counters). LMTP delivery and the HTTP API are not counted. Over the limit IMAP answers NO [LIMIT], POP3 -ERR [SYS/TEMP].
    limits: { imapDownloadBytesPerDay: null, imapUploadBytesPerDay: null, pop3DownloadBytesPerDay: null },
    // Names of the special-use mailboxes created for every new user (INBOX is always INBOX).
    mailboxes: { drafts: 'Drafts', sent: 'Sent Mail', trash: 'Trash', junk: 'Junk' },
  },

  tls: {
    // PEM key and certificate files; null = a self-signed certificate is generated in dataDir on first start.
    key: null,
    cert: null,
  },

  auth: {
    // Allow passwords over unencrypted connections from non-loopback clients (IMAP LOGINDISABLED otherwise).
    allowPlaintext: false,
    // Failed logins counted in the ephemeral store (shared by all server instances), per account (all its
    // names; per login name for unknown ones), per client address and per network (IPv4 /24, IPv6 /64). Each
    // attempt is reserved before the password is checked (so concurrent attempts count) and given back on
    // success. When the failures reach a limit, logins are refused without checking the password until
    // windowSeconds (from the first failure) pass; each failure and refusal waits delayMs. When attempts in
    // progress fill a budget, a login waits for them up to maxWaitMs, then gets "try again later".
    failedLogins: { perUser: 10, perIp: 30, perNetwork: 100, windowSeconds: 900, delayMs: 1000, maxWaitMs: 3000 },
    // Password hashing (scrypt): concurrency at once, the rest queued fairly per client network; a full queue
    // (maxQueue in all, maxQueuePerClient per network) answers "try again later". Successful checks are
    // remembered cacheSeconds (an HMAC, never the password; 0 = off; see the README for the trade-off).
    passwordChecks: { concurrency: 2, maxQueue: 200, maxQueuePerClient: 16, cacheSeconds: 60, cacheEntries: 10000 },
  },

  // Listeners. tlsPort null switches the implicit-TLS listener off; enabled false switches the protocol off.
  // proxyProtocol: expect a PROXY v1/v2 header (behind a load balancer). Limits are enforced while reading:
  // maxLineLength (bytes per command line), maxBadCommands (then BYE), maxConnectionsPerIp, idleTimeoutSeconds.
  // Counted at accept, before PROXY header and TLS handshake: maxConnections (this protocol's ports together;
  // more are dropped) and maxConnectionsPerIp; handshakeTimeoutSeconds bounds PROXY header + TLS handshake.
  // commandTimeoutSeconds: time to send one command from its first byte; every byte received adds
  // 1/minBytesPerSecond seconds, so uploads (APPEND literals, LMTP DATA) at least that fast are never cut off.
  imap: {
    enabled: true,
    host: '0.0.0.0',
    port: 1143,
    tlsPort: 1993,
    proxyProtocol: false,
    maxConnectionsPerIp: 100,
    maxConnections: 10000,
    handshakeTimeoutSeconds: 15,
    commandTimeoutSeconds: 120,
    minBytesPerSecond: 4096,
    // Concurrent IMAP sessions per user.
    maxConnectionsPerUser: 15,
    idleTimeoutSeconds: 1800,
    // Idle timeout before login (RFC 9051 §5.4 allows it to be shorter than the 30 minutes after login).
    preAuthIdleTimeoutSeconds: 180,
    // An IDLE command without input from the client for this long ends with BYE (clients re-IDLE within 29 min).
    idleCommandTimeoutSeconds: 1800,
    maxLineLength: 65536,
    // Most arguments in one command (search keys, fetch items, flags, nested lists all count); BAD [LIMIT] beyond.
    maxArguments: 1000,
    // Largest literal (all of one command's together) before login; APPEND before login is refused before its literal.
    maxPreAuthLiteralSize: 4096,
    // Largest literal outside APPEND; APPEND accepts up to limits.maxMessageSize.
    maxLiteralSize: 65536,
    // true: announce LITERAL- instead of LITERAL+ (RFC 7888); non-synchronizing literals over 4096 bytes get BAD [TOOBIG].
    literalMinus: false,
    maxBadCommands: 20,
    // IDLE clients get a keep-alive at most this far apart.
    idleRestartSeconds: 1740,
    // Offer COMPRESS=DEFLATE (RFC 4978) after login; a compressed session keeps about 70 KB of zlib state.
    compress: true,
    // LIST/LSUB: most characters of reference + pattern (summed over a command's patterns); more get NO [LIMIT].
    maxListPatternLength: 1024,
    // true: CREATE also subscribes the new mailbox and the parent levels it makes (off: clients subscribe
    // themselves, as RFC 3501 leaves it). The special-use mailboxes of a new user are subscribed either way.
    autoSubscribe: false,
  },
  pop3: {
    enabled: true,
    host: '0.0.0.0',
    port: 1110,
    tlsPort: 1995,
    proxyProtocol: false,
    maxConnectionsPerIp: 100,
    maxConnections: 10000,
    handshakeTimeoutSeconds: 15,
    commandTimeoutSeconds: 120,
    minBytesPerSecond: 4096,
    idleTimeoutSeconds: 1800,
    // Idle timeout before login (RFC 1939 §3: at least 10 minutes).
    preAuthIdleTimeoutSeconds: 600,
    maxLineLength: 65536,
    maxBadCommands: 20,
    // What QUIT does with DELE'd messages: 'trash' moves them to Trash (as WildDuck does), 'expunge' removes them.
    deleteMode: 'trash',
    // Only the newest this many INBOX messages are listed in a POP3 session.
    maxMessages: 250,
  },
  lmtp: {
    enabled: true,
    host: '127.0.0.1',
    port: 2424,
    tlsPort: null,
    proxyProtocol: false,
    maxConnectionsPerIp: 100,
    maxConnections: 10000,
    handshakeTimeoutSeconds: 15,
    commandTimeoutSeconds: 120,
    minBytesPerSecond: 4096,
    idleTimeoutSeconds: 1800,
    maxLineLength: 65536,
    maxBadCommands: 20,
    // Recipients per transaction; more get 452 4.5.3 (the MTA sends them in another transaction).
    maxRecipients: 1000,
  },
  delivery: {
    // The same Message-ID delivered to the same user again within this window is accepted but stored once (0 = off).
    duplicateWindowSeconds: 3600,
    // Header added by the MTA's spam scanner ("Yes, score=7.1", rspamd "add header"); spam goes to Junk.
    spamHeader: 'X-Spam-Status',
    // Outbound SMTP relay for mail sent through the API (POST /users/:user/submit), forwarding and autoreplies;
    // host null = send nothing (the API answers 503 UNAVAILABLE "no outbound relay configured").
    relay: { host: null, port: 25, secure: false, user: null, password: null },
    // Messages forwarded per user per 24 hours.
    forwardLimitPerDay: 1000,
    // Messages that already crossed this many hops (Delivered-To/Received) are not forwarded (loop protection).
    maxHops: 25,
    // At most one autoreply per sender per user within this interval.
    autoreplyIntervalSeconds: 4 * 3600,
  },
  api: {
    enabled: true,
    host: '127.0.0.1',
    port: 8080,
    // Root access token for the HTTP API (X-Access-Token header or ?accessToken=).
    accessToken: null,
    // With accessToken null: requests from loopback without a token are root. false = root needs accessToken.
    loopbackIsRoot: true,
    // Lifetime of per-user tokens issued by POST /authenticate with token: true.
    tokenTtlSeconds: 86400,
    // Largest JSON request body in bytes, enforced while reading (413 beyond it).
    maxBodyBytes: 1048576,
  },

  // Plugins in load order: a built-in plugin's name, [name, options], or a plugin object of your own
  // (see the plugin guide). Storage is always loaded as the last-stage committer; quota is loaded by default
  // (limits from users.quota; ['quota', false] switches it off), and so is submission (sends API submissions
  // through delivery.relay; ['submission', { maxRecipientsPerDay: 2000, checkSender: true }] sets its options),
  // and spam-routing (the MTA's delivery.spamHeader verdict sends mail to Junk; ['spam-routing', false] = off),
  // and the IMAP extensions imap-sort (SORT, SORT=DISPLAY), imap-thread (THREAD=...) and imap-esort (ESORT,
  // CONTEXT=SORT): ['imap-sort', false] etc. switch one off.
  // Built-ins you can add, e.g.:
  //   'list-status',
  //   ['sent-autosave', { windowMs: 600_000 }],   // Sent copies of API submissions
  //   ['junk-notify', { webhooks: [{ url: 'https://hooks.example/wd', secret: '...' }], learn: null }],
  //   ['rewrite', { protocols: ['lmtp'], externalTag: { tag: '[EXT]', internalDomains: ['example.com'] } }],
  plugins: [],
});
