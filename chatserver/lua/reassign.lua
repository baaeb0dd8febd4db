-- Hand an active conversation from one staff member to another (transfer, take-over).
-- KEYS[1] conversation hash, KEYS[2] old state hash, KEYS[3] old conversations set,
-- KEYS[4] new state hash, KEYS[5] new conversations set, KEYS[6] available zset
-- ARGV[1] conversation id, ARGV[2] old staff id, ARGV[3] new staff id, ARGV[4] new name,
-- ARGV[5] now, ARGV[6] note, ARGV[7] channel, ARGV[8] event,
-- ARGV[9] '1' = apply the assignment rules (a transfer to a colleague; a take-over does not),
-- ARGV[10] '' not a trainee; a trainee: 'w' watched by a supervisor, 'u' unwatched
-- (read by the caller from the trainee-watch registry, which names live sockets)
-- Returns 1 when handed over, 0 when the conversation is not active with the old staff;
-- with the rules: -1 the colleague is not available or paused, -2 at capacity,
-- -3 in wrap-up, -4 a trainee nobody watches, -5 a trainee and the conversation is a crisis.
local meta = redis.call('HMGET', KEYS[1], 'state', 'counsellor', 'crisis')
if meta[1] ~= 'active' or meta[2] ~= ARGV[2] then return 0 end
if ARGV[9] == '1' then
  local t = redis.call('HMGET', KEYS[4], 'state', 'capacity', 'load', 'wrapup_until')
  if t[1] ~= 'available' and t[1] ~= 'paused' then return -1 end
  if tonumber(t[3] or '0') >= tonumber(t[2] or '1') then return -2 end
  if tonumber(t[4] or '0') > tonumber(ARGV[5]) then return -3 end
  if ARGV[10] ~= '' then
    if meta[3] == '1' then return -5 end
    if ARGV[10] ~= 'w' then return -4 end
  end
end
local past = redis.call('HGET', KEYS[1], 'past_counsellors') or ''
redis.call('HSET', KEYS[1], 'counsellor', ARGV[3], 'counsellor_name', ARGV[4],
  'transfer_note', ARGV[6], 'past_counsellors', past .. ',' .. ARGV[2])
local function release(state_key, convs_key, staff_id)
  if redis.call('SREM', convs_key, ARGV[1]) == 1 then
    local load = redis.call('HINCRBY', state_key, 'load', -1)
    local s = redis.call('HMGET', state_key, 'state', 'capacity')
    redis.call('HSET', state_key, 'idle_since', ARGV[5])
    if s[1] == 'available' and load < tonumber(s[2] or '1') then
      redis.call('ZADD', KEYS[6], ARGV[5], staff_id)
    end
  end
end
release(KEYS[2], KEYS[3], ARGV[2])
if redis.call('SADD', KEYS[5], ARGV[1]) == 1 then
  local load = redis.call('HINCRBY', KEYS[4], 'load', 1)
  local cap = tonumber(redis.call('HGET', KEYS[4], 'capacity') or '1')
  if load >= cap then redis.call('ZREM', KEYS[6], ARGV[3]) end
end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 1
