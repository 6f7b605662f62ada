-- admit.lua: one admission, atomically (RedisStore.admit builds KEYS and ARGV).
-- For each subject (the key, if any, then the team), in this order, before any write:
-- parallel slots, requests per minute, tokens per minute, budgets (day, month, total).
-- The first check that fails returns a refusal and nothing is written; otherwise the
-- request takes its slot, its request and tokens are counted and its reservation is added
-- to all three budget counters of every subject (limited or not).
--
-- KEYS, six per subject: slots (zset request id -> expiry), rpm and tpm (hash epoch second ->
--   count), spent day, spent month, spent total (integer micro-dollars).
-- ARGV: 1 now (epoch seconds, float), 2 now's epoch second, 3 request id, 4 slot expiry,
--   5 tokens, 6 reserve micros, 7 day counter TTL, 8 month counter TTL, 9 rate hash TTL,
--   then six per subject: max parallel, rpm, tpm, day, month, total budget ('' = no limit).
-- Reply: refused {0, check (1 parallel, 2 requests, 3 tokens, 4 budget), subject (0-based),
--   limit, used, period (1 day, 2 month, 3 total; 0), has room (0/1), room second}
--   or admitted {1, {subject, limit, used, oldest second}... for rpm, the same for tpm,
--   {subject, period, limit, used}... for the limited budgets}.
-- Numbers the script computes go to Redis through string.format('%d'), never tostring,
-- which would write large integers in exponent form.

local now = tonumber(ARGV[1])
local second = tonumber(ARGV[2])
local window_start = second - 59
local amounts = {'1', ARGV[5]}
local reserve = tonumber(ARGV[6])
local subjects = #KEYS / 6

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
  return buckets, used, stale
end

local function room_at(buckets, need)
  local freed = 0
  for _, bucket in ipairs(buckets) do
    freed = freed + bucket[2]
    if freed >= need then return bucket[1] end
  end
  return nil
end

for s = 0, subjects - 1 do
  local k, a = s * 6, 9 + s * 6
  local max_parallel = tonumber(ARGV[a + 1])
  if max_parallel then
    local active = redis.call('ZCOUNT', KEYS[k + 1], '(' .. ARGV[1], '+inf')
    if active >= max_parallel then return {0, 1, s, max_parallel, active, 0, 0, 0} end
  end
  for r = 1, 2 do
    local limit = tonumber(ARGV[a + 1 + r])
    if limit then
      local amount = tonumber(amounts[r])
      local buckets, used = window(KEYS[k + 1 + r])
      if used + amount > limit then
        local room = nil
        if amount <= limit then room = room_at(buckets, used + amount - limit) end
        if room then return {0, 1 + r, s, limit, used, 0, 1, room} end
        return {0, 1 + r, s, limit, used, 0, 0, 0}
      end
    end
  end
  for p = 1, 3 do
    local limit = tonumber(ARGV[a + 3 + p])
    if limit then
      local used = tonumber(redis.call('GET', KEYS[k + 3 + p]) or '0')
      if used + reserve > limit then return {0, 4, s, limit, used, p, 0, 0} end
    end
  end
end

local uses = {{}, {}}
local budgets = {}
for s = 0, subjects - 1 do
  local k, a = s * 6, 9 + s * 6
  if tonumber(ARGV[a + 1]) then
    local slots = KEYS[k + 1]
    redis.call('ZREMRANGEBYSCORE', slots, '-inf', ARGV[1])
    redis.call('ZADD', slots, ARGV[4], ARGV[3])
    local last = redis.call('ZRANGE', slots, -1, -1, 'WITHSCORES')
    local ttl = math.ceil(tonumber(last[2]) - now) + 1
    redis.call('EXPIRE', slots, string.format('%d', ttl))
  end
  for r = 1, 2 do
    local limit = tonumber(ARGV[a + 1 + r])
    if limit then
      local key, amount = KEYS[k + 1 + r], tonumber(amounts[r])
      local buckets, used, stale = window(key)
      if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
      if amount > 0 then redis.call('HINCRBY', key, ARGV[2], amounts[r]) end
      redis.call('EXPIRE', key, ARGV[9])
      local oldest = nil
      if #buckets > 0 then oldest = buckets[1][1] end
      if amount > 0 and (oldest == nil or second < oldest) then oldest = second end
      local list = uses[r]
      list[#list + 1] = s
      list[#list + 1] = limit
      list[#list + 1] = used + amount
      list[#list + 1] = oldest or second
    end
  end
  for p = 1, 3 do
    local used = redis.call('INCRBY', KEYS[k + 3 + p], ARGV[6])
    if p < 3 then redis.call('EXPIRE', KEYS[k + 3 + p], ARGV[6 + p]) end
    local limit = tonumber(ARGV[a + 3 + p])
    if limit then
      budgets[#budgets + 1] = s
      budgets[#budgets + 1] = p
      budgets[#budgets + 1] = limit
      budgets[#budgets + 1] = used
    end
  end
end
return {1, uses[1], uses[2], budgets}
