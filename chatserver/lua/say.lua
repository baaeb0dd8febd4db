-- Store one message and announce it, atomically: the seq is the list length.
-- KEYS[1] messages list, KEYS[2] refs hash (party:ref -> seq)
-- ARGV[1] ref key ('' = none), ARGV[2] entry to store (msgpack), ARGV[3] channel,
-- ARGV[4] conversation id, ARGV[5] sending connection id,
-- ARGV[6] entry to announce live ('' = the stored one; differs when personal data was
--         redacted for storage: the counsellor still reads the text live)
-- Returns {seq, duplicate(0/1)}.
if ARGV[1] ~= '' then
  local existing = redis.call('HGET', KEYS[2], ARGV[1])
  if existing then return {tonumber(existing), 1} end
end
local seq = redis.call('RPUSH', KEYS[1], ARGV[2])
if ARGV[1] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], seq) end
local live = ARGV[2]
if ARGV[6] and ARGV[6] ~= '' then live = ARGV[6] end
redis.call('PUBLISH', ARGV[3], 'm|' .. ARGV[4] .. '|' .. seq .. '|' .. ARGV[5] .. '|' .. live)
return {seq, 0}
