-- A visitor joins the queue: reserve the nickname, create the conversation, enqueue.
-- KEYS[1] nicknames set, KEYS[2] queue zset, KEYS[3] conversation hash, KEYS[4] resume key
-- ARGV[1] nickname key, ARGV[2] max waiting, ARGV[3] queue score, ARGV[4] resume ttl (s),
-- ARGV[5] conversation id, ARGV[6] channel, ARGV[7] queue event, ARGV[8..] hash field/value pairs
-- Returns 1 ok, -1 nickname taken, -2 queue full.
if tonumber(ARGV[2]) > 0 and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  return -2
end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return -1 end
local pairs = {}
for i = 8, #ARGV do pairs[#pairs + 1] = ARGV[i] end
redis.call('HSET', KEYS[3], unpack(pairs))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[4])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
