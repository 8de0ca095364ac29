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


COUNT_LOGGED_IN: Final = """
-- ARGV: 1 stop counting at this many (0 = count them all), 2 agent key prefix, 3 the agents' ids
--       separated by spaces (named here, not as KEYS: see ROUTE_CALL)
-- returns how many exist with a state other than logged_out (at most ARGV[1] when it is not 0)
local n, limit = 0, tonumber(ARGV[1] or '0') or 0
for id in string.gmatch(ARGV[3], '%S+') do
  local state = redis.call('HGET', ARGV[2] .. id, 'state')
  if state and state ~= 'logged_out' then
    n = n + 1
    if n == limit then return n end
  end
end
return n
"""


ROUTE_CALL: Final = """
-- A routing decision in one round trip, call arrives: choose the best free operator among the
-- candidates and claim them, as CLAIM does. Which operators fit the call, and in which rank groups,
-- comes from acd.routing (the roster's tiers and skills, the queue's strategy, the preferred
-- operator): the rules are not written twice. The script only reads live state: within the first
-- group holding a free operator (ready, registered, no call), the one idle longest
-- (max(since, last_call_end)), then the smallest id. acd.routing.best_operator on the same state
-- chooses the same operator (tests/unit/test_routing_scripts.py).
-- KEYS: call hash, queue zset, the claimer's lease key (read only with a lease value)
-- ARGV: 1 call id, 2 claimer (must be the call's owner), 3 fencing token, 4 now, 5 queue name,
--       6 events channel, 7 lease value ('' = no lease), 8 the call's routes as the claimer wrote them
--       (tier, requirements, also and preferred as stored, joined by newlines), 9 agent key prefix,
--       10 the candidates' ids separated by spaces, group by group, 11 number of groups, then each
--       group's size
-- The candidates' hashes are named by ARGV (prefix and id), not as KEYS, as ROUTE_AGENT names the
-- calls': a few hundred keys, each packed and sent as its own argument, cost the controller more
-- than the script's reads (bench/capacity.py, py-spy). Not for Redis Cluster (neither is Unico's
-- key layout: one Redis, or one primary with replicas).
-- returns {1, agent id, idle since, free candidates} (won), {0} (the call is no longer waiting),
-- {2} (no candidate is free), {-1} (lease lost), {-2} (another controller owns the call),
-- {-3} (the call's routes changed since the claimer wrote them)
if ARGV[7] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[7] then return {-1} end
local call = redis.call('HMGET', KEYS[1], 'status', 'queue', 'owner', 'tier', 'requirements', 'also', 'preferred')
if call[1] ~= 'waiting' or call[2] ~= ARGV[5] then return {0} end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return {0} end
if (call[3] or '') ~= ARGV[2] then return {-2} end
if table.concat({call[4] or '', call[5] or '', call[6] or '', call[7] or ''}, '\\n') ~= ARGV[8] then return {-3} end
local ids = {}
for id in string.gmatch(ARGV[10], '%S+') do ids[#ids + 1] = id end
local k, free = 1, 0
local best_id, best_idle, best_raw
for g = 1, tonumber(ARGV[11]) do
  local settled = best_id ~= nil
  local last = k + tonumber(ARGV[11 + g]) - 1
  for i = k, last do
    local id = ids[i]
    local a = redis.call('HMGET', ARGV[9] .. id, 'state', 'registered', 'call_id', 'since', 'last_call_end')
    if a[1] == 'ready' and a[2] == '1' and (not a[3] or a[3] == '') then
      free = free + 1
      if not settled then
        local idle, raw = tonumber(a[4] or '') or 0, a[4] or '0'
        local ended = tonumber(a[5] or '') or 0
        if ended > idle then idle, raw = ended, a[5] or '0' end
        if best_id == nil or idle < best_idle or (idle == best_idle and id < best_id) then
          best_id, best_idle, best_raw = id, idle, raw
        end
      end
    end
  end
  k = last + 1
end
if best_id == nil then return {2} end
local agent = ARGV[9] .. best_id
redis.call('HSET', agent, 'state', 'ringing', 'reason', '', 'since', ARGV[4], 'call_id', ARGV[1],
           'controller', ARGV[2], 'token', ARGV[3])
redis.call('HSET', KEYS[1], 'status', 'claimed', 'agent', best_id, 'controller', ARGV[2], 'token', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[6], 'agent:' .. best_id)
redis.call('PUBLISH', ARGV[6], 'queue:' .. ARGV[5])
return {1, best_id, best_raw, free}
"""


ROUTE_AGENT: Final = """
-- A routing decision in one round trip, operator frees up: choose the most urgent waiting call the
-- operator can serve across the queues given, and claim it, as CLAIM does. Order as
-- acd.routing.best_call: highest priority, then earliest enqueue time, then smallest call id. A call
-- fits when one of its routes (its tier and minimum levels, then each overflow route) has a tier the
-- operator belongs to and levels the operator meets: acd.routing._fits, the one rule written here
-- a second time; tests/unit/test_routing_scripts.py holds the two to the same choices.
-- KEYS: agent hash, the claimer's lease key (read only with a lease value), then queue zsets
-- ARGV: 1 agent id, 2 claimer, 3 now, 4 events channel, 5 lease value ('' = no lease), 6 call key
--       prefix, 7 the operator's tiers and skills as JSON {"tiers": {tier: true}, "skills": {skill: level}}
--       (from the roster), 8 controller channel prefix (an offer to another owner is published there)
-- returns {1, call id, servable calls, owner ('' = the claimer's), queue, then the call's priority,
-- enqueued_at, tier, requirements, also and preferred as stored} (won),
-- {0} (the operator is not free), {2} (no waiting call fits), {-1} (lease lost)
if ARGV[5] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[5] then return {-1} end
local agent = redis.call('HMGET', KEYS[1], 'state', 'registered', 'call_id')
if agent[1] ~= 'ready' or agent[2] ~= '1' or (agent[3] and agent[3] ~= '') then return {0} end
local op = cjson.decode(ARGV[7])
local decoded, verdicts = {}, {}
local function json(text)
  local value = decoded[text]
  if value == nil then value = cjson.decode(text); decoded[text] = value end
  return value
end
local function fits(tier, levels)
  if not op.tiers[tier] then return false end
  for skill, level in pairs(levels) do
    if (op.skills[skill] or 0) < level then return false end
  end
  return true
end
local servable, best_id, best_priority, best_at, best_owner, best_queue, best_key = 0, nil, 0, 0, '', '', ''
for q = 3, #KEYS do
  for _, id in ipairs(redis.call('ZRANGE', KEYS[q], 0, -1)) do
    local c = redis.call('HMGET', ARGV[6] .. id, 'status', 'priority', 'enqueued_at', 'tier', 'requirements',
                         'also', 'owner', 'queue')
    if c[1] == 'waiting' then
      local routes = (c[4] or '') .. '\\n' .. (c[5] or '{}') .. '\\n' .. (c[6] or '[]')
      local ok = verdicts[routes]
      if ok == nil then
        ok = fits(c[4] or '', json(c[5] or '{}'))
        if not ok then
          for _, route in ipairs(json(c[6] or '[]')) do
            if fits(route[1], route[2]) then ok = true; break end
          end
        end
        verdicts[routes] = ok
      end
      if ok then
        servable = servable + 1
        local priority, at = tonumber(c[2]), tonumber(c[3])
        if best_id == nil or priority > best_priority or (priority == best_priority and
            (at < best_at or (at == best_at and id < best_id))) then
          best_id, best_priority, best_at = id, priority, at
          best_owner, best_queue, best_key = c[7] or '', c[8], KEYS[q]
        end
      end
    end
  end
end
if best_id == nil then return {2} end
local holder = best_owner
if holder == '' then holder = ARGV[2] end
redis.call('HSET', KEYS[1], 'state', 'ringing', 'reason', '', 'since', ARGV[3], 'call_id', best_id,
           'controller', holder, 'token', '')
redis.call('HSET', ARGV[6] .. best_id, 'status', 'claimed', 'agent', ARGV[1], 'controller', holder, 'token', '')
redis.call('ZREM', best_key, best_id)
redis.call('PUBLISH', ARGV[4], 'agent:' .. ARGV[1])
redis.call('PUBLISH', ARGV[4], 'queue:' .. best_queue)
if holder ~= ARGV[2] then
  redis.call('PUBLISH', ARGV[8] .. holder, cjson.encode({type = 'offer', call = best_id, agent = ARGV[1],
             servable = servable}))
end
local c = redis.call('HMGET', ARGV[6] .. best_id, 'priority', 'enqueued_at', 'tier', 'requirements', 'also',
                     'preferred')
return {1, best_id, servable, best_owner, best_queue, c[1], c[2], c[3], c[4], c[5], c[6] or ''}
"""

REMOVE_CALL: Final = """
-- The call leaves its line and Redis (the conversation began, the caller hung up, the call is over).
-- KEYS: call hash, owners hash
-- ARGV: 1 call id, 2 queue key prefix (the call's queue is read from its hash), 3 events channel,
--       4 '1' to forget its owner too (the call is over) or '0'
-- returns 1 if the call was still in Redis, else 0
if ARGV[4] == '1' then redis.call('HDEL', KEYS[2], ARGV[1]) end
local queue = redis.call('HGET', KEYS[1], 'queue')
if not queue or queue == '' then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[2] .. queue, ARGV[1])
redis.call('PUBLISH', ARGV[3], 'queue:' .. queue)
return 1
"""


HANDLE_TIME: Final = """
-- Fold one conversation's handle time into a queue's moving average, atomically (two controllers
-- ending conversations of one queue at once both count).
-- KEYS: the queue's average; ARGV: 1 this handle time (s), 2 the average without history, 3 weight
-- returns the new average
local current = tonumber(redis.call('GET', KEYS[1]) or '') or tonumber(ARGV[2])
local value = current + tonumber(ARGV[3]) * (tonumber(ARGV[1]) - current)
local text = string.format('%.17g', value)
redis.call('SET', KEYS[1], text)
return text
"""

__all__ = [
    "ADOPT",
    "CLAIM",
    "COUNT_LOGGED_IN",
    "HANDLE_TIME",
    "READ",
    "RELEASE",
    "REMOVE_CALL",
    "REQUEUE",
    "RESTORE_CLAIM",
    "ROUTE_AGENT",
    "ROUTE_CALL",
    "SET_AGENT",
]
