-- Compare-and-delete: drop a presence key only if it still names this connection.
-- KEYS[1] presence key, ARGV[1] connection id. Returns 1 when deleted.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
