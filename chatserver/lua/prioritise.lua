-- Change a waiting visitor's priority; their queue score follows.
-- KEYS[1] conversation hash, KEYS[2] queue zset
-- ARGV[1] conversation id, ARGV[2] priority, ARGV[3] priority weight, ARGV[4] channel,
-- ARGV[5] queue event, ARGV[6] crisis flag ('' = keep)
-- Returns 1 when changed, 0 when the visitor is not waiting.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end  -- gone: never make it again
local meta = redis.call('HMGET', KEYS[1], 'state', 'queued_at', 'enqueued')
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'crisis', ARGV[6]) end
if meta[1] ~= 'waiting' then return 0 end
local at = tonumber(meta[2] or meta[3] or '0')
redis.call('HSET', KEYS[1], 'priority', ARGV[2])
redis.call('ZADD', KEYS[2], 'XX', at - tonumber(ARGV[2]) * tonumber(ARGV[3]), ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
