"""The Redis inbox's Lua scripts: each touches the keys of one shard only (one hash tag), so every
step is atomic on a single Redis and on Redis Cluster alike.

Keys of shard N (``{sN}`` is the hash tag): ``ready`` is a stream with one entry per conversation
that has work (its *token*, read by a consumer group); ``q:<conversation>`` lists the conversation's
messages as ``"<entry id>|<envelope JSON>"``; ``sched:<conversation>`` holds the id of its token
while it has one; ``tries`` counts takes per entry; ``depth`` counts queued messages; ``dead`` is the
dead-letter stream; ``seen:<channel>:<message id>`` is the dedupe mark.

A claim is a token pending for one consumer in the group. Every script that acts for a claim first
checks that the token is still the conversation's and still pending for the caller (``_OWNED``):
a worker whose claim lapsed (paused past the visibility timeout) is refused, never obeyed.
"""

from __future__ import annotations

# ARGV[1]: group, ARGV[2]: consumer, ARGV[3]: token; KEYS[2]: sched, KEYS[3]: ready.
_OWNED = """
local function owned()
  if redis.call('GET', KEYS[2]) ~= ARGV[3] then return false end
  local pending = redis.call('XPENDING', KEYS[3], ARGV[1], ARGV[3], ARGV[3], 1)
  return #pending == 1 and pending[1][2] == ARGV[2]
end
"""

# Queue the message; make the conversation ready unless a token for it exists already.
ENQUEUE = """
local function enqueue(queue, sched, ready, seq, depth, envelope, conversation)
  local id = redis.call('INCR', seq)
  redis.call('RPUSH', queue, id .. '|' .. envelope)
  redis.call('INCR', depth)
  if redis.call('EXISTS', sched) == 0 then
    redis.call('SET', sched, redis.call('XADD', ready, '*', 'c', conversation))
  end
end
"""

# KEYS: seen, queue, sched, ready, seq, depth. ARGV: dedupe ttl ms, envelope JSON, conversation.
# 1: stored; 0: seen before (a platform's retry). The mark is set in the same step as the store.
PUT = ENQUEUE + """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) == false then return 0 end
enqueue(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[2], ARGV[3])
return 1
"""

# KEYS: queue, sched, ready, seq, depth. ARGV: envelope JSON, conversation. Past the dedupe mark.
REPLAY = ENQUEUE + """
enqueue(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2])
return 1
"""

# KEYS: queue, sched, ready, tries. ARGV[1]: group, ARGV[3]: token. The claimed conversation's
# next message, taken (its takes counted): {1, head, takes}; or, none left, the claim ends: {0}.
_TAKE = """
local function take()
  local head = redis.call('LINDEX', KEYS[1], 0)
  if head == false then
    redis.call('DEL', KEYS[2])
    redis.call('XACK', KEYS[3], ARGV[1], ARGV[3])
    redis.call('XDEL', KEYS[3], ARGV[3])
    return {0}
  end
  local id = string.match(head, '^(%d+)|')
  return {1, head, redis.call('HINCRBY', KEYS[4], id, 1)}
end
"""

# KEYS: queue, sched, ready, tries. ARGV: group, consumer, token.
# {1, head, takes}: the next message; {0}: none left, the claim ended; {-1}: not ours (any more).
NEXT = _OWNED + _TAKE + """
if not owned() then return {-1} end
return take()
"""

# KEYS[1]: queue, KEYS[4]: tries, KEYS[5]: depth. Pop the head if it is entry ARGV[4]; its
# envelope JSON, or false when the head is another entry (or none).
_POP_HEAD = """
local function pop_head()
  local head = redis.call('LINDEX', KEYS[1], 0)
  if head == false or string.sub(head, 1, #ARGV[4] + 1) ~= ARGV[4] .. '|' then return false end
  redis.call('LPOP', KEYS[1])
  redis.call('HDEL', KEYS[4], ARGV[4])
  redis.call('DECR', KEYS[5])
  return string.sub(head, #ARGV[4] + 2)
end
"""

# KEYS: queue, sched, ready, tries, depth. ARGV: group, consumer, token, entry id.
# Pop the head if it is that entry, then take the next one as NEXT does: one round trip a message,
# not two. {-1}: not ours, the entry still queued (the claim lapsed before it was done).
# It may run twice: the client re-sends a command whose answer a timeout or a reset connection
# lost. The entry is gone then, and the first run's work stands: the message it took is handed
# out as it was counted, or, the claim ended with the queue empty, {0} again.
DONE = _OWNED + _POP_HEAD + _TAKE + """
local head = redis.call('LINDEX', KEYS[1], 0)
local ours = head and string.sub(head, 1, #ARGV[4] + 1) == ARGV[4] .. '|'
if not owned() then
  if ours then return {-1} end
  return {0}
end
if pop_head() or head == false then return take() end
local takes = redis.call('HGET', KEYS[4], string.match(head, '^(%d+)|'))
if takes then return {1, head, tonumber(takes)} end
return take()
"""

# KEYS: queue, sched, ready, tries, depth, dead. ARGV: group, consumer, token, entry id,
# conversation, attempts, reason. Move the head to the dead-letter stream; 1, 0 or -1 as DONE's pop.
DEAD_LETTER = _OWNED + _POP_HEAD + """
if not owned() then return -1 end
local envelope = pop_head()
if envelope == false then return 0 end
redis.call('XADD', KEYS[6], '*', 'envelope', envelope, 'conversation', ARGV[5],
           'attempts', ARGV[6], 'reason', ARGV[7])
return 1
"""

# KEYS: queue, sched, ready, tries. ARGV: group, consumer, token, conversation[, entry id]. Hand a
# claim back: its token goes, and a fresh one at the end of the stream if messages are still
# queued. The entry id names a message DONE took but no worker started: its take is not counted.
RELEASE = _OWNED + """
if not owned() then return 0 end
if ARGV[5] then redis.call('HINCRBY', KEYS[4], ARGV[5], -1) end
redis.call('XACK', KEYS[3], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[3], ARGV[3])
if redis.call('LLEN', KEYS[1]) > 0 then
  redis.call('SET', KEYS[2], redis.call('XADD', KEYS[3], '*', 'c', ARGV[4]))
else
  redis.call('DEL', KEYS[2])
end
return 1
"""

# KEYS: ready. ARGV: group, consumer, tokens... Reset the idle time of the tokens still pending
# for us (so no one reclaims a conversation we are answering slowly); 1 per renewed token, else 0.
RENEW = """
local renewed = {}
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #pending == 1 and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed[#renewed + 1] = 1
  else
    renewed[#renewed + 1] = 0
  end
end
return renewed
"""
