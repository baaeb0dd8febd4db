-- A visitor joins the queue: reserve the nickname, create the conversation, enqueue, and
-- (when ARGV[8] is set) give it a grace deadline at once: until a socket's presence is
-- registered (attach, in store.py) the conversation is ended by the grace sweeper, so a
-- hello whose later steps fail (a Redis error, a socket gone) leaves no queued orphan.
-- KEYS[1] nicknames set, KEYS[2] queue zset, KEYS[3] conversation hash, KEYS[4] resume key,
-- KEYS[5] grace zset, KEYS[6] the nickname's pending-hello key (conversation id, until attach)
-- ARGV[1] nickname key, ARGV[2] max waiting, ARGV[3] queue score, ARGV[4] resume ttl (s),
-- ARGV[5] conversation id, ARGV[6] channel, ARGV[7] queue event, ARGV[8] grace deadline
-- ('' for none), ARGV[9] pending-key ttl (s), ARGV[10..] hash field/value pairs
-- Returns 1 ok, -1 nickname taken, -2 queue full.
if tonumber(ARGV[2]) > 0 and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  return -2
end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return -1 end
local pairs = {}
for i = 10, #ARGV do pairs[#pairs + 1] = ARGV[i] end
redis.call('HSET', KEYS[3], unpack(pairs))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[4])
if ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[5], ARGV[8], 'v:' .. ARGV[5])
  redis.call('SET', KEYS[6], ARGV[5], 'EX', ARGV[9])
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
