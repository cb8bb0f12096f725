/**
 * The Lua scripts of RedisEphemeral (storage/ephemeral/redis.ts): every operation of EphemeralPort that takes more
 * than one Redis command runs as one script, so it is atomic against every other client of the same Redis.
 * Registered with ioredis `defineCommand` (EVALSHA, falling back to EVAL once after a Redis restart or SCRIPT FLUSH).
 *
 * Conventions shared with MemoryEphemeral: one keyspace; a key whose value is not a number (a lock token) reads as
 * an absent counter; a TTL <= 0 means no expiry. TTLs arrive as whole milliseconds.
 */

/** KEYS[1] counter; ARGV[1] by, ARGV[2] ttl ms. The expiry is set by the increment that creates the counter. */
const incr = `
local cur = tonumber(redis.call('GET', KEYS[1]))
local by = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
if cur then
  return redis.call('INCRBY', KEYS[1], by)
end
if ttl > 0 then redis.call('SET', KEYS[1], by, 'PX', ttl) else redis.call('SET', KEYS[1], by) end
return by
`;

/** KEYS[1] mark; ARGV[1] to, ARGV[2] ttl ms. Returns the value before; raises it (keeping its expiry) when below. */
const raise = `
local cur = tonumber(redis.call('GET', KEYS[1]))
local to = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
if cur then
  if to > cur then redis.call('SET', KEYS[1], to, 'KEEPTTL') end
  return cur
end
if to > 0 then
  if ttl > 0 then redis.call('SET', KEYS[1], to, 'PX', ttl) else redis.call('SET', KEYS[1], to) end
end
return 0
`;

/**
 * KEYS counters; ARGV[1] ttl ms, ARGV[2..] their limits. All or nothing: returns the 0-based index of the first
 * counter at its limit (nothing changed), or -1 after adding 1 to each.
 */
const reserve = `
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if (tonumber(redis.call('GET', key)) or 0) >= tonumber(ARGV[i + 1]) then return i - 1 end
end
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key)) then
    redis.call('INCR', key)
  elseif ttl > 0 then
    redis.call('SET', key, 1, 'PX', ttl)
  else
    redis.call('SET', key, 1)
  end
end
return -1
`;

/** KEYS[1] counter; ARGV[1] by. Never below zero, never creates the key, keeps its expiry. */
const release = `
local cur = tonumber(redis.call('GET', KEYS[1]))
if not cur then return 0 end
local v = cur - tonumber(ARGV[1])
if v < 0 then v = 0 end
redis.call('SET', KEYS[1], v, 'KEEPTTL')
return v
`;

/** KEYS[1] lock; ARGV[1] token. Deletes the lock only when the token holds it. */
const unlock = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

/** KEYS[1] lock; ARGV[1] token, ARGV[2] ttl ms. Sets a new expiry only when the token holds the lock. */
const extend = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else redis.call('PERSIST', KEYS[1]) end
return 1
`;

/** Script name → [number of keys (null: given per call, first argument), source]. */
export const EPHEMERAL_SCRIPTS = {
  wdIncr: [1, incr],
  wdRaise: [1, raise],
  wdReserve: [null, reserve],
  wdRelease: [1, release],
  wdUnlock: [1, unlock],
  wdExtend: [1, extend],
} as const;

/** The commands the scripts add to a client (ioredis `defineCommand`); replies are integers. */
export interface EphemeralScripts {
  wdIncr(key: string, by: number, ttlMs: number): Promise<number>;
  wdRaise(key: string, to: number, ttlMs: number): Promise<number>;
  wdReserve(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Promise<number>;
  wdRelease(key: string, by: number): Promise<number>;
  wdUnlock(key: string, token: string): Promise<number>;
  wdExtend(key: string, token: string, ttlMs: number): Promise<number>;
}
