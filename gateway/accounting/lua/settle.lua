-- settle.lua: one settlement, atomically and at most once per request id
-- (RedisStore.settle_many builds KEYS and ARGV).
-- Marks the request done; moves the budget counters by the difference between the actual
-- cost and the reservation (or by the whole cost without an admission); frees the request's
-- parallel slots and corrects the TPM bucket of its admission second (never below zero);
-- adds the record to the day's totals per group; appends it to the team's ledger stream.
--
-- KEYS: 1 done marker, 2 ledger stream, 3-6 day totals by team, key, alias, deployment
--   (hash "metric:name" -> sum), 7-9 the team's spent day/month/total, 10-12 the key's,
--   13-14 the team's slots and tpm, 15-16 the key's.
-- ARGV[1], one JSON object:
--   done_ttl, day_ttl, month_ttl: the done marker's and the spent counters' TTLs (seconds);
--   ledger_max: the ledger's approximate maximum length (a decimal string);
--   charge_key: whether the key's budget counters move too (false: no key);
--   delta: the budget counters' change in micros;
--   request_id, second: the admission's epoch second (a decimal string; '' = no admission);
--   tokens: the TPM correction (actual minus reserved tokens);
--   held: per subject of the admission, team then key, {free its slot, correct its TPM}
--     (empty without an admission);
--   groups: the record's team, key, alias and deployment names;
--   metrics: what the record adds to each group's totals, flat metric/amount pairs;
--   entry: the ledger entry, flat field/value pairs (strings).
-- Reply: 1 settled, 0 already settled (nothing changed).
-- Numbers go to Redis through string.format('%d'), never tostring, which would write large
-- integers in exponent form.

local args = cjson.decode(ARGV[1])
local function int(n) return string.format('%d', n) end

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', int(args.done_ttl)) then return 0 end

local owners = {7}
if args.charge_key then owners[2] = 10 end
local delta = int(args.delta)
for _, first in ipairs(owners) do
  for p = 0, 2 do redis.call('INCRBY', KEYS[first + p], delta) end
  redis.call('EXPIRE', KEYS[first], int(args.day_ttl))
  redis.call('EXPIRE', KEYS[first + 1], int(args.month_ttl))
end

for n, held in ipairs(args.held) do
  local slots = KEYS[11 + 2 * n]
  if held[1] then redis.call('ZREM', slots, args.request_id) end
  if held[2] then
    local tpm = KEYS[12 + 2 * n]
    local current = redis.call('HGET', tpm, args.second)
    if current then
      local corrected = tonumber(current) + args.tokens
      if corrected < 0 then corrected = 0 end
      redis.call('HSET', tpm, args.second, int(corrected))
    end
  end
end

local metrics = args.metrics
for g, name in ipairs(args.groups) do
  local totals = KEYS[2 + g]
  for i = 1, #metrics, 2 do
    redis.call('HINCRBY', totals, metrics[i] .. ':' .. name, int(metrics[i + 1]))
  end
end

redis.call('XADD', KEYS[2], 'MAXLEN', '~', args.ledger_max, '*', unpack(args.entry))
return 1
