-- Makes the globals and every library table read-only, as Redis 7.0's
-- patched Lua does: scripts see proxies whose writes raise Redis's error,
-- and reading an unknown global raises too. Returns the environment
-- scripts run in. Chunk "=rampart".
local G, register_function, load_log = ...
local setmetatable, getmetatable, rawset, error, type, tostring, pairs, getfenv =
  setmetatable, getmetatable, rawset, error, type, tostring, pairs, getfenv

local proxies = setmetatable({}, {__mode = 'k'})
local function readonly(level)
  error('Attempt to modify a readonly table', level or 2)
end

local function protect(t, seen)
  if seen[t] then return seen[t] end
  local p = {}
  seen[t] = p
  proxies[p] = t
  for k, v in pairs(t) do
    if type(v) == 'table' and k ~= '_G' then t[k] = protect(v, seen) end
  end
  setmetatable(p, {__index = t, __newindex = function() readonly(3) end, __metatable = false})
  return p
end

local seen = {}
local env = {}
seen[G] = env
proxies[env] = G
for k, v in pairs(G) do
  if type(v) == 'table' and k ~= '_G' then G[k] = protect(v, seen) end
end
G._G = env
setmetatable(G, {__index = function(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end})
setmetatable(env, {__index = G, __newindex = function() readonly(3) end, __metatable = false})

-- The string methods ("x"):upper() go through the protected table too.
local smt = getmetatable('')
if smt then smt.__index = G.string end

G.rawset = function(t, k, v)
  if proxies[t] then readonly(0) end
  return rawset(t, k, v)
end
G.setmetatable = function(t, mt)
  if proxies[t] then readonly(0) end
  return setmetatable(t, mt)
end
G.getfenv = function(f)
  if f == nil then f = 1 end
  if type(f) == 'number' and f > 0 then f = f + 1 end
  local e = getfenv(f)
  if e == G then return env end
  return e
end

-- FUNCTION LOAD runs a library with only redis.register_function and
-- redis.log in sight; its functions later run with the full globals.
-- Both see them through `fenv`, whose __index `switch` changes.
local function erroring(t)
  return setmetatable(t, {__index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end})
end
local redis = proxies[G.redis]
local load_redis = erroring({
  register_function = register_function,
  log = load_log,
  LOG_DEBUG = redis.LOG_DEBUG, LOG_VERBOSE = redis.LOG_VERBOSE,
  LOG_NOTICE = redis.LOG_NOTICE, LOG_WARNING = redis.LOG_WARNING,
  REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
})
local load_api = erroring({redis = protect(load_redis, {})})
-- At run time a function reads the globals straight from G rather than
-- through env (whose __index is G): the same values (G._G is env) one
-- lookup sooner, for every global a function reads (`redis`, each call).
local fmeta = {__index = G, __newindex = function() readonly(3) end, __metatable = false}
local fenv = setmetatable({}, fmeta)
proxies[fenv] = fenv
local function switch(loading)
  fmeta.__index = loading and load_api or G
end
return env, fenv, switch
