-- admit.lua: one admission, atomically (RedisStore.admit builds KEYS and ARGV).
-- If the request is already settled (its done marker exists: the gateway gave up waiting for
-- this reply, served the request unmetered and settled it before Redis ran this script), it
-- writes nothing and answers admitted: nobody waits for the answer any more.
-- Otherwise, for each subject (the key, if any, then the team), in this order, before any
-- write: parallel slots, requests per minute, tokens per minute, budgets (day, month, total).
-- The first check that fails returns a refusal and nothing is written; otherwise the
-- request takes its slot, its request and tokens are counted, its reservation is added to
-- all three budget counters of every subject (limited or not), and what it took is recorded
-- in the request's held entry (for settle.lua to give back), which expires with the admission.
--
-- KEYS: 1 the request's done marker, 2 its held entry, then six per subject: slots (zset
--   request id -> expiry), rpm and tpm (hash epoch second -> count), spent day, spent month,
--   spent total (integer micro-dollars).
-- ARGV[1], one JSON array: now (epoch seconds, a decimal string: it is written as a score
--   bound as given), request id, slot expiry (a decimal string), tokens, reserve micros, day
--   counter TTL, month counter TTL, rate hash TTL, the budget day and month ids, the held
--   entry's TTL (milliseconds), then six per subject: max parallel, rpm, tpm, day, month,
--   total budget (null = no limit).
-- The held entry: a JSON array of strings: reserve, tokens, epoch second of the TPM bucket,
--   day id, month id, then three per subject: its counters' key prefix, '1' if it took a
--   parallel slot, '1' if it counted TPM tokens ('0' otherwise).
-- Reply: refused {0, check (1 parallel, 2 requests, 3 tokens, 4 budget), subject (0-based),
--   limit, used, period (1 day, 2 month, 3 total; 0), has room (0/1), room second}
--   or admitted {1, {subject, limit, used, oldest second}... for rpm, the same for tpm,
--   {subject, period, limit, used}... for the limited budgets} (all empty when already
--   settled).
-- Numbers the script computes go to Redis through string.format('%d'), never tostring,
-- which would write large integers in exponent form (nor cjson.encode: 14 digits).

if redis.call('EXISTS', KEYS[1]) == 1 then return {1, {}, {}, {}} end

local args = cjson.decode(ARGV[1])
local now_text, request_id, expiry = args[1], args[2], args[3]
local now = tonumber(now_text)
local second = math.floor(now)
local second_text = string.format('%d', second)
local window_start = second - 59
local amounts = {1, args[4]}
local reserve = args[5]
local reserve_text = string.format('%d', reserve)
local ttls = {string.format('%d', args[6]), string.format('%d', args[7])}
local rate_ttl = string.format('%d', args[8])
local day, month, held_ttl = args[9], args[10], string.format('%d', args[11])
local subjects = (#KEYS - 2) / 6

local function limit(s, n)
  local value = args[11 + s * 6 + n]
  if value == cjson.null then return nil end
  return value
end

local function window(key)
  local flat = redis.call('HGETALL', key)
  local buckets, used, stale = {}, 0, {}
  for i = 1, #flat, 2 do
    local at = tonumber(flat[i])
    if at >= window_start then
      buckets[#buckets + 1] = {at, tonumber(flat[i + 1])}
      used = used + tonumber(flat[i + 1])
    else
      stale[#stale + 1] = flat[i]
    end
  end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  return {buckets = buckets, used = used, stale = stale}
end

local function room_at(buckets, need)
  local freed = 0
  for _, bucket in ipairs(buckets) do
    freed = freed + bucket[2]
    if freed >= need then return bucket[1] end
  end
  return nil
end

-- Checks. The windows read here are kept for the writes: nothing else runs in between.
local windows = {}
for s = 0, subjects - 1 do
  local k = 2 + s * 6
  local max_parallel = limit(s, 1)
  if max_parallel then
    local active = redis.call('ZCOUNT', KEYS[k + 1], '(' .. now_text, '+inf')
    if active >= max_parallel then return {0, 1, s, max_parallel, active, 0, 0, 0} end
  end
  for r = 1, 2 do
    local cap = limit(s, 1 + r)
    if cap then
      local amount = amounts[r]
      local seen = window(KEYS[k + 1 + r])
      windows[k + 1 + r] = seen
      local used = seen.used
      if used + amount > cap then
        local room = nil
        if amount <= cap then room = room_at(seen.buckets, used + amount - cap) end
        if room then return {0, 1 + r, s, cap, used, 0, 1, room} end
        return {0, 1 + r, s, cap, used, 0, 0, 0}
      end
    end
  end
  for p = 1, 3 do
    local cap = limit(s, 3 + p)
    if cap then
      local used = tonumber(redis.call('GET', KEYS[k + 3 + p]) or '0')
      if used + reserve > cap then return {0, 4, s, cap, used, p, 0, 0} end
    end
  end
end

-- Writes.
local uses = {{}, {}}
local budgets = {}
local held = {reserve_text, string.format('%d', amounts[2]), second_text, day, month}
for s = 0, subjects - 1 do
  local k = 2 + s * 6
  if limit(s, 1) then
    local slots = KEYS[k + 1]
    redis.call('ZREMRANGEBYSCORE', slots, '-inf', now_text)
    redis.call('ZADD', slots, expiry, request_id)
    local last = redis.call('ZRANGE', slots, -1, -1, 'WITHSCORES')
    local ttl = math.ceil(tonumber(last[2]) - now) + 1
    redis.call('EXPIRE', slots, string.format('%d', ttl))
  end
  for r = 1, 2 do
    local cap = limit(s, 1 + r)
    if cap then
      local key, amount = KEYS[k + 1 + r], amounts[r]
      local seen = windows[k + 1 + r]
      if #seen.stale > 0 then redis.call('HDEL', key, unpack(seen.stale)) end
      if amount > 0 then
        redis.call('HINCRBY', key, second_text, string.format('%d', amount))
      end
      redis.call('EXPIRE', key, rate_ttl)
      local oldest = nil
      if #seen.buckets > 0 then oldest = seen.buckets[1][1] end
      if amount > 0 and (oldest == nil or second < oldest) then oldest = second end
      local list = uses[r]
      list[#list + 1] = s
      list[#list + 1] = cap
      list[#list + 1] = seen.used + amount
      list[#list + 1] = oldest or second
    end
  end
  for p = 1, 3 do
    local used = redis.call('INCRBY', KEYS[k + 3 + p], reserve_text)
    if p < 3 then redis.call('EXPIRE', KEYS[k + 3 + p], ttls[p]) end
    local cap = limit(s, 3 + p)
    if cap then
      budgets[#budgets + 1] = s
      budgets[#budgets + 1] = p
      budgets[#budgets + 1] = cap
      budgets[#budgets + 1] = used
    end
  end
  -- The subject's prefix: its slots key without ':slots'.
  held[#held + 1] = string.sub(KEYS[k + 1], 1, -7)
  held[#held + 1] = limit(s, 1) and '1' or '0'
  held[#held + 1] = limit(s, 3) and '1' or '0'
end
redis.call('SET', KEYS[2], cjson.encode(held), 'PX', held_ttl)
return {1, uses[1], uses[2], budgets}
