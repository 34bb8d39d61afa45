local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local limit = burst * T
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local base = math.max(tat, now)
local function remaining(b)
  local r = math.floor((now + limit - b) / T + 1e-9)
  if r < 0 then return 0 end
  return r
end
if n <= 0 then
  return {1, remaining(base), 0, math.ceil(base - now)}
end
if n > burst then
  return {0, remaining(base), -1, math.ceil(base - now)}
end
local nxt = base + n * T
local allow_at = nxt - limit
if allow_at > now then
  return {0, remaining(base), math.ceil(allow_at - now), math.ceil(base - now)}
end
redis.call('SET', KEYS[1], string.format('%.17g', nxt), 'PX', math.max(1, math.ceil((nxt - now) / 1000)))
return {1, remaining(nxt), 0, math.ceil(nxt - now)}
