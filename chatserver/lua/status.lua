-- A counsellor's availability and capacity; keeps the available zset true.
-- KEYS[1] counsellor state hash, KEYS[2] available zset
-- ARGV[1] staff id, ARGV[2] state, ARGV[3] capacity ('' = keep), ARGV[4] now,
-- ARGV[5..] extra field/value pairs (display name, skills, trainee)
local before = redis.call('HGET', KEYS[1], 'state')
redis.call('HSET', KEYS[1], 'state', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'capacity', ARGV[3]) end
if #ARGV >= 5 then
  local pairs = {}
  for i = 5, #ARGV do pairs[#pairs + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(pairs))
end
local s = redis.call('HMGET', KEYS[1], 'capacity', 'load', 'idle_since')
local capacity = tonumber(s[1] or '1')
local load = tonumber(s[2] or '0')
if not s[1] then redis.call('HSET', KEYS[1], 'capacity', capacity) end
if not s[2] then redis.call('HSET', KEYS[1], 'load', 0) end
if ARGV[2] == 'available' and load < capacity then
  local idle = ARGV[4]
  if before == 'available' and s[3] then idle = s[3] else
    redis.call('HSET', KEYS[1], 'idle_since', idle)
  end
  redis.call('ZADD', KEYS[2], idle, ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return load
