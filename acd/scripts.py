"""The Lua scripts of ``acd.live.LiveState``: each runs to completion inside Redis before any other
command, which is what makes a claim, a release or a read of a routing snapshot atomic across
controllers. Keys and arguments are documented at the top of each script; ``LiveState`` registers
them (EVALSHA, re-loaded on NOSCRIPT by redis-py).
"""

from __future__ import annotations

from typing import Final

CLAIM: Final = """
-- KEYS: agent hash, call hash, queue zset, then optionally the claimer's lease (unico.lease)
-- ARGV: agent id, call id, controller id, fencing token, now, queue name, events channel, the lease
--       value the claimer holds ('' without a lease), then optionally a channel and a message
--       published when the claim wins (the offer to the call's owner)
if KEYS[4] and redis.call('GET', KEYS[4]) ~= ARGV[8] then return -1 end
local agent = redis.call('HMGET', KEYS[1], 'state', 'registered', 'call_id')
if agent[1] ~= 'ready' or agent[2] ~= '1' or (agent[3] and agent[3] ~= '') then return 0 end
local call = redis.call('HMGET', KEYS[2], 'status', 'queue')
if call[1] ~= 'waiting' or call[2] ~= ARGV[6] then return 0 end
if not redis.call('ZSCORE', KEYS[3], ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'ringing', 'reason', '', 'since', ARGV[5], 'call_id', ARGV[2],
           'controller', ARGV[3], 'token', ARGV[4])
redis.call('HSET', KEYS[2], 'status', 'claimed', 'agent', ARGV[1], 'controller', ARGV[3], 'token', ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('PUBLISH', ARGV[7], 'agent:' .. ARGV[1])
redis.call('PUBLISH', ARGV[7], 'queue:' .. ARGV[6])
if ARGV[9] then redis.call('PUBLISH', ARGV[9], ARGV[10]) end
return 1
"""

RELEASE: Final = """
-- KEYS: agent hash, call hash, queue zset
-- ARGV: agent id, call id, controller id, fencing token, now, queue name, agent state, reason, requeue (1/0),
--       events channel
local agent = redis.call('HMGET', KEYS[1], 'call_id', 'controller', 'token')
if agent[1] ~= ARGV[2] or agent[2] ~= ARGV[3] or agent[3] ~= ARGV[4] then return 0 end
local call = redis.call('HMGET', KEYS[2], 'status', 'agent', 'queue', 'enqueued_at')
if call[1] ~= 'claimed' or call[2] ~= ARGV[1] or call[3] ~= ARGV[6] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[7], 'reason', ARGV[8], 'since', ARGV[5], 'call_id', '',
           'controller', '', 'token', '')
if ARGV[9] == '1' then
  redis.call('HSET', KEYS[2], 'status', 'waiting', 'agent', '', 'controller', '', 'token', '')
  redis.call('ZADD', KEYS[3], call[4], ARGV[2])
else
  redis.call('DEL', KEYS[2])
end
redis.call('PUBLISH', ARGV[10], 'agent:' .. ARGV[1])
redis.call('PUBLISH', ARGV[10], 'queue:' .. ARGV[6])
return 1
"""

READ: Final = """
-- KEYS: hashes read whole (an agent, a call, the agents who could serve it), then queue zsets
-- ARGV: how many of KEYS are hashes, call key prefix
-- returns JSON [[[field, value, ...] per hash, in KEYS order], [[id, [field, value, ...]], ...]]: the
-- second list holds every waiting call, queue by queue, in line order. One string: a reply of nested
-- arrays costs the client far more to parse than JSON. cjson writes an empty table as {}.
local hashes, calls = {}, {}
local n = tonumber(ARGV[1])
for i = 1, n do
  hashes[i] = redis.call('HGETALL', KEYS[i])
end
for i = n + 1, #KEYS do
  for _, id in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    local fields = redis.call('HGETALL', ARGV[2] .. id)
    if #fields > 0 then
      calls[#calls + 1] = {id, fields}
    end
  end
end
return cjson.encode({hashes, calls})
"""

SET_AGENT: Final = """
-- KEYS: agent hash, agents set
-- ARGV: agent id, expected state ('' = any), events channel, then field/value pairs
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'state') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
if redis.call('HGET', KEYS[1], 'call_id') == '' then
  redis.call('HSET', KEYS[1], 'controller', '', 'token', '')
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[3], 'agent:' .. ARGV[1])
return 1
"""


ADOPT: Final = """
-- KEYS: agent hash, call hash; ARGV: call id, new holder
if redis.call('HGET', KEYS[1], 'call_id') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'controller', ARGV[2], 'token', '')
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'controller', ARGV[2], 'owner', ARGV[2], 'token', '')
end
return 1
"""


REQUEUE: Final = """
-- KEYS: call hash, queue zset, owners hash; ARGV: call id, now, events channel, agent key prefix,
--       then the call's field/value pairs (status waiting, owner ...), its enqueue time, its queue
-- A claim left on the call (an offer that died with its controller) is withdrawn: the operator is
-- ready again. Returns the freed operator's id, or ''.
local freed = ''
local n = #ARGV
local agent = redis.call('HGET', KEYS[1], 'agent')
if redis.call('HGET', KEYS[1], 'status') == 'claimed' and agent and agent ~= '' then
  local akey = ARGV[4] .. agent
  if redis.call('HGET', akey, 'call_id') == ARGV[1] then
    redis.call('HSET', akey, 'state', 'ready', 'reason', '', 'since', ARGV[2], 'call_id', '',
               'controller', '', 'token', '')
    redis.call('PUBLISH', ARGV[3], 'agent:' .. agent)
    freed = agent
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 5, n - 2))
redis.call('ZADD', KEYS[2], ARGV[n - 1], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], redis.call('HGET', KEYS[1], 'owner'))
redis.call('PUBLISH', ARGV[3], 'queue:' .. ARGV[n])
return freed
"""


RESTORE_CLAIM: Final = """
-- KEYS: agent hash, call hash, owners hash, agents set
-- ARGV: agent id, call id, controller id, now, events channel, then the call's field/value pairs
-- (a rebuild after Redis lost them: the call is claimed by the agent, whose phone is ringing)
redis.call('HSET', KEYS[2], unpack(ARGV, 6))
redis.call('HSET', KEYS[2], 'status', 'claimed', 'agent', ARGV[1], 'controller', ARGV[3], 'token', '')
redis.call('HSET', KEYS[1], 'state', 'ringing', 'reason', '', 'since', ARGV[4], 'call_id', ARGV[2],
           'controller', ARGV[3], 'token', '')
if not redis.call('HGET', KEYS[1], 'registered') then redis.call('HSET', KEYS[1], 'registered', '1') end
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('PUBLISH', ARGV[5], 'agent:' .. ARGV[1])
return 1
"""

__all__ = ["ADOPT", "CLAIM", "READ", "RELEASE", "REQUEUE", "RESTORE_CLAIM", "SET_AGENT"]
