-- Give a waiting visitor to a counsellor, if both still allow it.
-- KEYS[1] queue zset, KEYS[2] conversation hash, KEYS[3] counsellor state hash,
-- KEYS[4] available zset, KEYS[5] counsellor's conversations set, KEYS[6] active set
-- ARGV[1] conversation id, ARGV[2] staff id, ARGV[3] now, ARGV[4] channel,
-- ARGV[5] assigned event, ARGV[6] queue event ('' publishes none: a batch of claims
-- publishes one after its last claim)
-- The display name is the counsellor state's own, read here with the rest.
-- Returns 1 when claimed, 0 when a precondition no longer holds.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if redis.call('HGET', KEYS[2], 'state') ~= 'waiting' then return 0 end
local s = redis.call('HMGET', KEYS[3], 'state', 'capacity', 'load', 'wrapup_until', 'name')
if s[1] ~= 'available' then return 0 end
local capacity = tonumber(s[2] or '1')
local load = tonumber(s[3] or '0')
if load >= capacity then return 0 end
if tonumber(s[4] or '0') > tonumber(ARGV[3]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'active', 'counsellor', ARGV[2],
  'counsellor_name', s[5] or '', 'assigned', ARGV[3])
load = redis.call('HINCRBY', KEYS[3], 'load', 1)
redis.call('HSET', KEYS[3], 'idle_since', ARGV[3])
if load >= capacity then
  redis.call('ZREM', KEYS[4], ARGV[2])
else
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
end
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[5])
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[6]) end
return 1
