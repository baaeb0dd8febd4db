-- Put an active conversation back at the front of the queue, history kept.
-- KEYS[1] conversation hash, KEYS[2] queue zset, KEYS[3] old state hash,
-- KEYS[4] old conversations set, KEYS[5] available zset, KEYS[6] active set
-- ARGV[1] conversation id, ARGV[2] old staff id, ARGV[3] now, ARGV[4] note,
-- ARGV[5] channel, ARGV[6] requeued event, ARGV[7] queue event, ARGV[8] priority weight
-- The old counsellor joins past_counsellors (the policy passes them over for a while) and
-- their idle time restarts now; requeued_at is when the visitor came back to the queue.
-- Returns 1 when requeued.
local meta = redis.call('HMGET', KEYS[1], 'state', 'counsellor', 'priority')
if meta[1] ~= 'active' or meta[2] ~= ARGV[2] then return 0 end
local priority = tonumber(meta[3] or '0')
local past = redis.call('HGET', KEYS[1], 'past_counsellors') or ''
redis.call('HSET', KEYS[1], 'state', 'waiting', 'queued_at', '0', 'transfer_note', ARGV[4],
  'past_counsellors', past .. ',' .. ARGV[2], 'requeued_at', ARGV[3])
redis.call('HDEL', KEYS[1], 'counsellor', 'counsellor_name', 'assigned')
redis.call('ZADD', KEYS[2], 0 - priority * tonumber(ARGV[8]), ARGV[1])
redis.call('SREM', KEYS[6], ARGV[1])
if redis.call('SREM', KEYS[4], ARGV[1]) == 1 then
  local load = redis.call('HINCRBY', KEYS[3], 'load', -1)
  local s = redis.call('HMGET', KEYS[3], 'state', 'capacity')
  redis.call('HSET', KEYS[3], 'idle_since', ARGV[3])
  if s[1] == 'available' and load < tonumber(s[2] or '1') then
    redis.call('ZADD', KEYS[5], ARGV[3], ARGV[2])
  end
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
redis.call('PUBLISH', ARGV[5], ARGV[7])
return 1
