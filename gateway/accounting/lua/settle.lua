-- settle.lua: one settlement, atomically and at most once per request id
-- (RedisStore.settle_many builds KEYS and ARGV).
-- Marks the request done. If its admission's held entry is there (admit.lua ran and the
-- entry has not expired), gives back what it recorded: the budget counters of the
-- admission's periods, for each subject it reserved on, move by the actual cost minus the
-- reservation; the parallel slots it took are freed; the TPM bucket of its admission second
-- is corrected to the actual tokens (never below zero); the entry is deleted. Without a held
-- entry (no admission reached Redis, or it expired), the record's cost is charged to the
-- record's periods of its team and key. Then it adds the record to the day's totals per
-- group and appends it to the team's ledger stream.
--
-- KEYS: 1 done marker, 2 held entry, 3 ledger stream, 4-7 day totals by team, key, alias,
--   deployment (hash "metric:name" -> sum), 8-10 the team's spent day/month/total of the
--   record's periods, 11-13 the key's. The held entry's counters, slots and TPM buckets are
--   named from the prefixes it holds: they carry the same hash tag (the same Cluster slot).
-- ARGV[1], one JSON object:
--   done_ttl, day_ttl, month_ttl: the done marker's and the spent counters' TTLs (seconds);
--   ledger_max: the ledger's approximate maximum length (a decimal string);
--   charge_key: whether the key's counters are charged without a held entry (false: no key);
--   cost: the record's cost in micros; tokens: its actual tokens (input + output);
--   request_id;
--   groups: the record's team, key, alias and deployment names;
--   metrics: what the record adds to each group's totals, flat metric/amount pairs;
--   entry: the ledger entry, flat field/value pairs (strings).
-- The held entry: see admit.lua.
-- Reply: 1 settled, 0 already settled (nothing changed).
-- Numbers go to Redis through string.format('%d'), never tostring, which would write large
-- integers in exponent form.

local args = cjson.decode(ARGV[1])
local function int(n) return string.format('%d', n) end

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', int(args.done_ttl)) then return 0 end

local day_ttl, month_ttl = int(args.day_ttl), int(args.month_ttl)

local function charge(day, month, total, delta)
  redis.call('INCRBY', day, delta)
  redis.call('INCRBY', month, delta)
  redis.call('INCRBY', total, delta)
  redis.call('EXPIRE', day, day_ttl)
  redis.call('EXPIRE', month, month_ttl)
end

local held = redis.call('GET', KEYS[2])
if held then
  redis.call('DEL', KEYS[2])
  held = cjson.decode(held)
  local delta = int(args.cost - tonumber(held[1]))
  local tokens = args.tokens - tonumber(held[2])
  local second, day, month = held[3], held[4], held[5]
  for s = 6, #held, 3 do
    local prefix = held[s]
    local spent = prefix .. ':spent:'
    charge(spent .. 'day:' .. day, spent .. 'month:' .. month, spent .. 'total', delta)
    if held[s + 1] == '1' then redis.call('ZREM', prefix .. ':slots', args.request_id) end
    if held[s + 2] == '1' then
      local tpm = prefix .. ':tpm'
      local current = redis.call('HGET', tpm, second)
      if current then
        local corrected = tonumber(current) + tokens
        if corrected < 0 then corrected = 0 end
        redis.call('HSET', tpm, second, int(corrected))
      end
    end
  end
else
  local cost = int(args.cost)
  charge(KEYS[8], KEYS[9], KEYS[10], cost)
  if args.charge_key then charge(KEYS[11], KEYS[12], KEYS[13], cost) end
end

local metrics = args.metrics
for g, name in ipairs(args.groups) do
  local totals = KEYS[3 + g]
  for i = 1, #metrics, 2 do
    redis.call('HINCRBY', totals, metrics[i] .. ':' .. name, int(metrics[i + 1]))
  end
end

redis.call('XADD', KEYS[3], 'MAXLEN', '~', args.ledger_max, '*', unpack(args.entry))
return 1
