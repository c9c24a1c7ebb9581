/* store_redis_lua.c — the Lua scripts of the Redis backend (store_redis.c runs them): every
 * read-modify-write of the cache, the rate windows with their queues of waiters, and the
 * markers is one script, so it is atomic on the server. Keys are as store_redis.c lists them.
 */
#include "store_impl.h"

/* Lua 5.1 prints numbers with %.14g: millisecond times (13 digits) stay exact. */
#define LUA_NOW                                                                        \
    "local t = redis.call('TIME')\n"                                                   \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* Scripts that write after TIME need effect replication before Redis 5 (a no-op later). */
#define LUA_EFFECTS "if redis.replicate_commands then redis.replicate_commands() end\n"

const char *const kmredis_lua[KMLUA_COUNT] = {
    /* KMLUA_GET: KEYS entry -> {now} or {now, s, f, g, body} */
    [KMLUA_GET] = LUA_NOW
    "local v = redis.call('HMGET', KEYS[1], 's', 'f', 'g', 'b')\n"
    "if not v[1] or not v[4] then return {now} end\n"
    "return {now, v[1], v[2], v[3], v[4]}\n",

    /* KMLUA_PUT: KEYS entry, zset, sizes, total, order counter; ARGV body, ttl ms, grace ms,
     * max bytes, sweep, charge.
     * Drops the entry's old copy, sweeps expired names off the head of the zset, evicts the
     * oldest until the body fits, then stores it. -> 1, or -1 when the body can never fit. */
    [KMLUA_PUT] = LUA_EFFECTS LUA_NOW
    "local n = tonumber(ARGV[6])\n"
    "local ttl = tonumber(ARGV[2])\n"
    "local grace = tonumber(ARGV[3])\n"
    "local max = tonumber(ARGV[4])\n"
    "local sweep = tonumber(ARGV[5])\n"
    "if n > max then return -1 end\n"
    "local total = tonumber(redis.call('GET', KEYS[4]) or '0')\n"
    "local old = redis.call('HGET', KEYS[3], KEYS[1])\n"
    "if old then\n"
    "  total = total - tonumber(old)\n"
    "  redis.call('ZREM', KEYS[2], KEYS[1])\n"
    "  redis.call('HDEL', KEYS[3], KEYS[1])\n"
    "end\n"
    "while true do\n"
    "  local head = redis.call('ZRANGE', KEYS[2], 0, 0)\n"
    "  if #head == 0 then total = 0 break end\n"
    "  local k = head[1]\n"
    "  if total + n <= max then\n"
    "    if sweep <= 0 or redis.call('EXISTS', k) == 1 then break end\n"
    "    sweep = sweep - 1\n"
    "  end\n"
    "  local s = tonumber(redis.call('HGET', KEYS[3], k) or '0')\n"
    "  redis.call('DEL', k)\n"
    "  redis.call('ZREM', KEYS[2], k)\n"
    "  redis.call('HDEL', KEYS[3], k)\n"
    "  total = total - s\n"
    "end\n"
    "if total < 0 then total = 0 end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('HMSET', KEYS[1], 's', now, 'f', now + ttl, 'g', now + ttl + grace,"
    " 'b', ARGV[1])\n"
    "redis.call('PEXPIRE', KEYS[1], ttl + grace)\n"
    "redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[5]), KEYS[1])\n"
    "redis.call('HSET', KEYS[3], KEYS[1], n)\n"
    "redis.call('SET', KEYS[4], total + n)\n"
    "return 1\n",

    /* KMLUA_CLEAR: KEYS zset, sizes, total -> number of entries dropped */
    [KMLUA_CLEAR] = "local ks = redis.call('ZRANGE', KEYS[1], 0, -1)\n"
    "for _, k in ipairs(ks) do redis.call('DEL', k) end\n"
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])\n"
    "return #ks\n",

    /* KMLUA_RATE: KEYS log (peek: only it), queue, leases; ARGV mode ('take' |
     * 'peek'), window (peek, 1-based), unique member suffix, nwin, then (enforced length ms,
     * max) per window, then (take) ticket ("" for none), lease ms, turn ms, queue cap.
     * take -> {1, 0} recorded, or {0, wait ms}; peek -> {remaining, reset ms}. The queue
     * follows kmstore_queue_turn (store_impl.h) step for step: scored by the arrival in the
     * ticket's first 12 hex digits, equal scores ordered by the tickets' bytes, so its order
     * is strcmp's. A ticket not yet queued is added to learn its place, and removed again
     * when it takes at once. */
    [KMLUA_RATE] = LUA_EFFECTS LUA_NOW
    "local nwin = tonumber(ARGV[4])\n"
    "local longest = 0\n"
    "for i = 1, nwin do\n"
    "  local len = tonumber(ARGV[3 + 2 * i])\n"
    "  if len > longest then longest = len end\n"
    "end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)\n"
    "local function counted(len)\n"
    "  return redis.call('ZCOUNT', KEYS[1], '(' .. (now - len), '+inf')\n"
    "end\n"
    "local function nth(len, i)\n"
    "  local e = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - len), '+inf',"
    " 'WITHSCORES', 'LIMIT', i, 1)\n"
    "  return tonumber(e[2])\n"
    "end\n"
    "if ARGV[1] == 'peek' then\n"
    "  local w = tonumber(ARGV[2])\n"
    "  local len = tonumber(ARGV[3 + 2 * w])\n"
    "  local max = tonumber(ARGV[4 + 2 * w])\n"
    "  local n = counted(len)\n"
    "  local reset = 0\n"
    "  if n > 0 then reset = nth(len, 0) + len - now end\n"
    "  local left = max - n\n"
    "  if left < 0 then left = 0 end\n"
    "  return {left, reset}\n"
    "end\n"
    "local q = 5 + 2 * nwin\n"
    "local ticket = ARGV[q]\n"
    "local lease = tonumber(ARGV[q + 1])\n"
    "local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)\n"
    "for _, t in ipairs(dead) do redis.call('ZREM', KEYS[2], t) end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)\n"
    "local pos = redis.call('ZCARD', KEYS[2])\n"
    "local queued = false\n"
    "if ticket ~= '' then\n"
    "  local r = redis.call('ZRANK', KEYS[2], ticket)\n"
    "  if r then\n"
    "    pos = r queued = true\n"
    "  elseif pos < tonumber(ARGV[q + 3]) then\n"
    "    local at = tonumber(string.sub(ticket, 1, 12), 16) or 0\n"
    "    redis.call('ZADD', KEYS[2], at, ticket)\n"
    "    pos = redis.call('ZRANK', KEYS[2], ticket) queued = true\n"
    "  end\n"
    "end\n"
    "local wait = 0\n"
    "local room = -1\n"
    "for i = 1, nwin do\n"
    "  local len = tonumber(ARGV[3 + 2 * i])\n"
    "  local max = tonumber(ARGV[4 + 2 * i])\n"
    "  local n = counted(len)\n"
    "  if room < 0 or max - n < room then room = max - n end\n"
    "  if n >= max then\n"
    "    local w = nth(len, n - max) + len - now\n"
    "    if w < 1 then w = 1 end\n"
    "    if w > wait then wait = w end\n"
    "  end\n"
    "end\n"
    "if pos < room then\n"
    "  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])\n"
    "  redis.call('PEXPIRE', KEYS[1], longest)\n"
    "  if queued then\n"
    "    redis.call('ZREM', KEYS[2], ticket)\n"
    "    redis.call('ZREM', KEYS[3], ticket)\n"
    "  end\n"
    "  return {1, 0}\n"
    "end\n"
    "if wait <= 0 then wait = tonumber(ARGV[q + 2]) end\n"
    "if queued then\n"
    "  redis.call('ZADD', KEYS[3], now + wait + lease, ticket)\n"
    "  for k = 2, 3 do\n"
    "    if redis.call('PTTL', KEYS[k]) < wait + lease then\n"
    "      redis.call('PEXPIRE', KEYS[k], wait + lease)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {0, wait}\n",

    /* KMLUA_UNLOCK: compare-and-delete. KEYS marker; ARGV token -> 1 deleted, 0 not ours */
    [KMLUA_UNLOCK] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n",

    /* KMLUA_LEAVE: KEYS queue, leases; ARGV ticket -> 1 */
    [KMLUA_LEAVE] = "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "return 1\n",
};
