-- settle.lua: one settlement, atomically and at most once per request id
-- (RedisStore.settle builds KEYS and ARGV).
-- Marks the request done; moves the budget counters by the difference between the actual
-- cost and the reservation (or by the whole cost without an admission); frees the request's
-- parallel slots and corrects the TPM bucket of its admission second (never below zero);
-- adds the record to the day's totals per group; appends it to the team's ledger stream.
--
-- KEYS: 1 done marker, 2 ledger stream, 3-6 day totals by team, key, alias, deployment
--   (hash "metric:name" -> sum), 7-9 the team's spent day/month/total, 10-12 the key's,
--   13-14 the team's slots and tpm, 15-16 the key's.
-- ARGV: 1 done marker TTL, 2 ledger max length (approximate), 3 charge the key's budget
--   (0/1), 4 budget delta micros, 5 day counter TTL, 6 month counter TTL, 7 request id,
--   8 admission second ('' = no admission), 9 TPM delta, 10 team: '' none / '0' slots only /
--   '1' slots and TPM, 11 key: the same, 12 then per totals hash: a pair count and that
--   many field/value pairs, then the ledger entry's field/value pairs.
-- Reply: 1 settled, 0 already settled (nothing changed).

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end

local owners = {7}
if ARGV[3] == '1' then owners[2] = 10 end
for _, first in ipairs(owners) do
  for p = 0, 2 do redis.call('INCRBY', KEYS[first + p], ARGV[4]) end
  redis.call('EXPIRE', KEYS[first], ARGV[5])
  redis.call('EXPIRE', KEYS[first + 1], ARGV[6])
end

if ARGV[8] ~= '' then
  local held = {{13, ARGV[10]}, {15, ARGV[11]}}
  for _, subject in ipairs(held) do
    if subject[2] ~= '' then
      redis.call('ZREM', KEYS[subject[1]], ARGV[7])
    end
    if subject[2] == '1' then
      local tpm = KEYS[subject[1] + 1]
      local current = redis.call('HGET', tpm, ARGV[8])
      if current then
        local corrected = tonumber(current) + tonumber(ARGV[9])
        if corrected < 0 then corrected = 0 end
        redis.call('HSET', tpm, ARGV[8], string.format('%d', corrected))
      end
    end
  end
end

local i = 12
for g = 0, 3 do
  local pairs_count = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, pairs_count do
    redis.call('HINCRBY', KEYS[3 + g], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
end

local entry = {}
for j = i, #ARGV do entry[#entry + 1] = ARGV[j] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(entry))
return 1
