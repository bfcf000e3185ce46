-- Runs once when the VM starts, as chunk "=rampart" (the error handler
-- skips frames of this chunk, so errors point at the user's line).
-- P holds the primitives Rust fills in for each run; G is the real
-- global table.
local P, G = ...
local error, select, type, lua_pcall, xpcall, rawset = error, select, type, pcall, xpcall, rawset

local redis = G.redis
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end

-- Redis 7 raises error tables; its pcall gives scripts the message, as
-- older versions did.
local function pcall_result(ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) == 'userdata' then
    local m = P.unwrap(e)
    if m ~= nil then e = m end
  elseif type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then e = m end
  end
  return false, e
end
G.pcall = function(f, ...)
  return pcall_result(lua_pcall(f, ...))
end

-- Binary chunks can break the VM's invariants: only text is loaded.
local lua_loadstring, lua_load = G.loadstring, G.load
G.loadstring = function(s, name)
  if type(s) == 'string' and s:byte(1) == 27 then
    return nil, 'bytecode loading is disabled'
  end
  return lua_loadstring(s, name)
end
G.load = function(f, name)
  local parts = {}
  while true do
    local piece = f()
    if piece == nil or piece == '' then break end
    if type(piece) ~= 'string' then return nil, 'reader function must return a string' end
    parts[#parts + 1] = piece
  end
  return G.loadstring(table.concat(parts), name)
end

-- A function's callback and its tables wait here for `call_function`
-- (xpcall passes no arguments): one closure for the VM's life rather than
-- one made, and collected, per FCALL.
local cf, ck, ca
local function call_function()
  local f, k, a = cf, ck, ca
  cf, ck, ca = nil, nil, nil
  return f(k, a)
end

-- EVAL (`eval` true): KEYS and ARGV become globals, fresh tables each run
-- as in Redis 7.0, set here with the raw rawset (the sandbox replaces the
-- global one) rather than by Rust, which cost two registry round trips.
-- FCALL: the function gets them as arguments.
local run = function(f, handler, keys, args, eval)
  if eval then
    rawset(G, 'KEYS', keys)
    rawset(G, 'ARGV', args)
    return xpcall(f, handler)
  end
  cf, ck, ca = f, keys, args
  return xpcall(call_function, handler)
end
return run
