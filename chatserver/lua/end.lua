-- End a conversation (waiting or active) once; free the counsellor's place.
-- KEYS[1] conversation hash, KEYS[2] queue zset, KEYS[3] nicknames set, KEYS[4] grace zset,
-- KEYS[5] active set, KEYS[6] handling-times list, KEYS[7] available zset,
-- KEYS[8] counsellor state hash ('' hash when none), KEYS[9] counsellor's conversations set
-- ARGV[1] conversation id, ARGV[2] reason, ARGV[3] now, ARGV[4] channel, ARGV[5] ended event,
-- ARGV[6] queue event, ARGV[7] wrap-up seconds, ARGV[8] retention seconds
-- Returns the previous state ('waiting'/'active') or false when already ended / unknown.
local meta = redis.call('HMGET', KEYS[1], 'state', 'nick_key', 'counsellor', 'assigned')
local state = meta[1]
if state ~= 'waiting' and state ~= 'active' then return false end
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'ended', 'reason', ARGV[2], 'ended', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('ZREM', KEYS[2], ARGV[1])
if meta[2] then redis.call('SREM', KEYS[3], meta[2]) end
redis.call('ZREM', KEYS[4], 'v:' .. ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
if state == 'active' and meta[3] then
  redis.call('LPUSH', KEYS[6], now - tonumber(meta[4]))
  redis.call('LTRIM', KEYS[6], 0, 199)
  if redis.call('SREM', KEYS[9], ARGV[1]) == 1 then
    local load = redis.call('HINCRBY', KEYS[8], 'load', -1)
    local s = redis.call('HMGET', KEYS[8], 'state', 'capacity')
    redis.call('HSET', KEYS[8], 'idle_since', ARGV[3],
      'wrapup_until', now + tonumber(ARGV[7]))
    if s[1] == 'available' and load < tonumber(s[2] or '1') then
      redis.call('ZADD', KEYS[7], now, meta[3])
    end
  end
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
if state == 'waiting' then redis.call('PUBLISH', ARGV[4], ARGV[6]) end
return state
