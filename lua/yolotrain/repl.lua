-- What the REPLs show and offer (the plain `yolotrain` REPL, the Ctrl-C pause and `yolotrain attach`):
--
--   repl.repr(v [, opts])      a value as text: tables nested (bounded depth and width, cycles marked), class
--                              instances with their class name, tensors with shape, dtype and a summary, models
--                              with their summary line. opts: depth (3), width (items per table, 24), indent
--   repl.help([obj])           text: the REPL's commands (no argument), or what obj offers: its class, methods and
--                              fields with the descriptions of docs/reference.md
--   repl.complete(text, env)   the names that complete `text` ("trainer.ar", "trainer:sc", "yt.ze") in env (whose
--                              metatable may list, in __names, the tables its __index function reads)
--   repl.index(t, k)           t[k], with an integer k also finding the string key ("m.model[22]")
local class = require("yolotrain.class")

local M = {}

M.DEPTH, M.WIDTH = 3, 24

local function is_tensor(v)
  local ok, yt = pcall(require, "yolotrain.core")
  return ok and yt.is_tensor and yt.is_tensor(v)
end

local function class_name(v)
  if type(v) ~= "table" then return nil end
  local mt = getmetatable(v)
  if type(mt) == "table" and type(rawget(mt, "__name")) == "string" and mt ~= v then
    return rawget(mt, "__name")
  end
  return nil
end

local function is_module(v)
  local ok, Module = pcall(require, "yolotrain.nn.module")
  return ok and type(v) == "table" and class.is_instance(v, Module)
end

local function tensor_repr(t)
  local s = tostring(t)
  local ok, n = pcall(function() return t:numel() end)
  if ok and n and n > 8 and tostring(t:dtype()):match("float") then
    local okm, mn, mx, mean = pcall(function() return t:min():item(), t:max():item(), t:mean():item() end)
    if okm then s = s .. string.format("  min %.5g max %.5g mean %.5g", mn, mx, mean) end
  end
  if t.requires_grad then s = s .. "  requires_grad" end
  return s
end

-- The one line that names a module: a model's summary line, or the class with its size.
local function module_repr(m)
  if m.info and m.layer_rows then
    local ok, line = pcall(function() return select(5, m:info(false)) end)
    if ok and type(line) == "string" then return line end
  end
  local nparams = 0
  local ok = pcall(function()
    for _, p in m:named_parameters() do nparams = nparams + p:numel() end
  end)
  local nchildren = #(rawget(m, "_child_names") or {})
  return string.format("%s(%d children, %s parameters)", m:class_name() or "Module", nchildren,
    ok and tostring(nparams) or "?")
end

local function key_repr(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
  if type(k) == "string" then return "[" .. string.format("%q", k) .. "]" end
  return "[" .. tostring(k) .. "]"
end

local function sorted_keys(t)
  local n = #t
  local keys = {}
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "string" or ta == "number" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return n, keys
end

local function repr(v, depth, opts, seen, indent)
  local tv = type(v)
  if tv == "string" then
    if #v > 200 then return string.format("%q", v:sub(1, 200)) .. string.format("... (%d bytes)", #v) end
    return string.format("%q", v)
  end
  if tv == "function" then
    local info = debug.getinfo(v, "S")
    if info.what == "C" then return "function (C)" end
    return string.format("function (%s:%d)", info.short_src, info.linedefined)
  end
  if tv == "userdata" then
    if is_tensor(v) then return tensor_repr(v) end
    return tostring(v)
  end
  if tv ~= "table" then return tostring(v) end
  if class.is_class and class.is_class(v) then return tostring(v) end
  if is_module(v) then return module_repr(v) end
  local mt = getmetatable(v)
  if type(mt) == "table" and rawget(mt, "__tostring") and not class_name(v) then return tostring(v) end
  if seen[v] then return "<cycle>" end
  local name = class_name(v)
  local head = name and (name .. " ") or ""
  if depth <= 0 then
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    return string.format("%s{...%d}", head, n)
  end
  seen[v] = true
  local n, keys = sorted_keys(v)
  local items, shown = {}, 0
  local inner = indent .. "  "
  for i = 1, n do
    if shown >= opts.width then break end
    items[#items + 1] = repr(v[i], depth - 1, opts, seen, inner)
    shown = shown + 1
  end
  for _, k in ipairs(keys) do
    if shown >= opts.width then break end
    local kv = rawget(v, k)
    items[#items + 1] = key_repr(k) .. " = " .. repr(kv, depth - 1, opts, seen, inner)
    shown = shown + 1
  end
  local total = n + #keys
  if total > shown then items[#items + 1] = string.format("... (%d more)", total - shown) end
  seen[v] = nil
  if #items == 0 then return head .. "{}" end
  local one = head .. "{ " .. table.concat(items, ", ") .. " }"
  if #one + #indent <= 100 and not one:find("\n", 1, true) then return one end
  return head .. "{\n" .. inner .. table.concat(items, ",\n" .. inner) .. "\n" .. indent .. "}"
end

function M.repr(v, opts)
  opts = opts or {}
  local o = { depth = opts.depth or M.DEPTH, width = opts.width or M.WIDTH }
  return repr(v, o.depth, o, {}, opts.indent or "")
end

-- ---- indexing ----

function M.index(t, k)
  local v = t[k]
  if v == nil and math.type(k) == "integer" then v = t[tostring(k)] end
  return v
end

-- ---- the reference ----

local reference -- name ("Class:method", "Class.method", "trainer.attr") -> { sig =, desc = }

local function reference_path()
  local init = package.searchpath("yolotrain.repl", package.path)
  if not init then return nil end
  local lua_dir = init:gsub("/yolotrain/repl%.lua$", "")
  local candidates = { lua_dir .. "/../docs/reference.md", lua_dir .. "/../../doc/yolotrain/reference.md" }
  for _, p in ipairs(candidates) do
    local f = io.open(p, "r")
    if f then f:close() return p end
  end
  return nil
end

function M.reference()
  if reference then return reference end
  reference = {}
  local path = reference_path()
  local f = path and io.open(path, "r")
  if not f then return reference end
  for line in f:lines() do
    local cell, desc = line:match("^| `([^`]+)`[^|]*| (.*) |$")
    if cell then
      local name = cell:match("^([%w_%.:]+)") or cell
      name = name:gsub("^init:.*", "")
      if name ~= "" and not reference[name] then reference[name] = { sig = cell, desc = desc } end
    end
  end
  f:close()
  return reference
end

-- ---- help ----

M.COMMANDS = {
  { "help([obj])", "this text, or what obj offers (methods, fields, from docs/reference.md)" },
  { "trainer", "the running Detection_Trainer: trainer.epoch, trainer.args, trainer.model, trainer.optimizer ..." },
  { "trainer:set{k = v, ...}", "a live change that holds (lr0, lrf, momentum, weight_decay, mosaic, epochs, " ..
    "patience, save_period, close_mosaic); logged in args.yaml's history, restored by resume" },
  { "pause()", "(attach) hold the training at this step boundary until cont()" },
  { "cont()", "carry on training" },
  { "save()", "(attach) write weights/last.safetensors now" },
  { "stop()", "save last and end the training, as Ctrl-C does" },
}

local function class_chain(obj)
  local chain = {}
  local C = (class.is_class and class.is_class(obj)) and obj or getmetatable(obj)
  local guard = 0
  while type(C) == "table" and guard < 20 do
    chain[#chain + 1] = C
    C = rawget(C, "__parent")
    guard = guard + 1
  end
  return chain
end

local function describe(ref, cname, name, sep)
  for _, key in ipairs({ cname .. sep .. name, cname .. "." .. name, "trainer." .. name }) do
    local e = ref[key]
    if e then return e.desc end
  end
  return nil
end

function M.help(obj)
  local out = {}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  if obj == nil then
    add("Commands (the training keeps its own state; an error in an entry never stops it):")
    for _, c in ipairs(M.COMMANDS) do add("  %-26s %s", c[1], c[2]) end
    add("Tab completes names, fields and methods; help(trainer), help(trainer.model), help(yt) list what they offer.")
    return table.concat(out, "\n")
  end
  local ref = M.reference()
  if type(obj) ~= "table" then
    add("%s", M.repr(obj))
    if type(obj) == "userdata" and getmetatable(obj) and type(getmetatable(obj).__index) == "table" then
      local names = {}
      for k in pairs(getmetatable(obj).__index) do names[#names + 1] = tostring(k) end
      table.sort(names)
      add("methods: %s", table.concat(names, ", "))
    end
    return table.concat(out, "\n")
  end
  local chain = class_chain(obj)
  local cname = (#chain > 0 and rawget(chain[1], "__name")) or nil
  if cname then
    local names = {}
    for _, C in ipairs(chain) do names[#names + 1] = tostring(rawget(C, "__name")) end
    add("%s (%s)", cname, table.concat(names, " < "))
  end
  -- methods: every function of the class chain, the nearest definition first
  local methods, seen = {}, {}
  for _, C in ipairs(chain) do
    local Cn = tostring(rawget(C, "__name"))
    for k, v in pairs(C) do
      if type(k) == "string" and type(v) == "function" and not k:match("^_") and not seen[k] then
        seen[k] = true
        methods[#methods + 1] = { k, describe(ref, Cn, k, ":") }
      end
    end
  end
  table.sort(methods, function(a, b) return a[1] < b[1] end)
  if #methods > 0 then
    add("methods:")
    for _, m in ipairs(methods) do add("  :%-24s %s", m[1], m[2] or "") end
  end
  local fields = {}
  for k, v in pairs(obj) do
    if type(k) == "string" and not k:match("^_") and not (type(v) == "function" and cname) then
      fields[#fields + 1] = k
    end
  end
  table.sort(fields)
  if #fields > 0 then
    add(cname and "fields:" or "keys:")
    for _, k in ipairs(fields) do
      local d = cname and describe(ref, cname, k, ".") or nil
      local v = M.repr(rawget(obj, k), { depth = 0 })
      if #v > 60 then v = v:sub(1, 57) .. "..." end
      add("  .%-24s %s%s", k, v, d and ("  -- " .. d) or "")
    end
  end
  return table.concat(out, "\n")
end

-- ---- completion ----

local function members(v)
  local names = {}
  local guard = 0
  local function add_table(t)
    for k in pairs(t) do
      if type(k) == "string" then names[k] = true end
    end
  end
  if type(v) == "table" then
    add_table(v)
    local r = rawget(v, "_registered")
    if type(r) == "table" then add_table(r) end
  end
  local mt = getmetatable(v)
  while type(mt) == "table" and guard < 20 do
    local idx = rawget(mt, "__index")
    if type(idx) == "table" then add_table(idx) end
    if class.is_class and class.is_class(mt) then add_table(mt) end
    mt = rawget(mt, "__parent") or (type(idx) == "table" and idx ~= mt and getmetatable(idx)) or nil
    guard = guard + 1
  end
  return names
end

-- The completions of text: the last dotted/colon part is completed among the members of what precedes it.
function M.complete(text, env)
  local prefix, sep, last = text:match("^(.*)([%.:])([%w_]*)$")
  local base
  if prefix then
    base = env
    local first = true
    for part in prefix:gmatch("[^%.:]+") do
      if type(base) ~= "table" and type(base) ~= "userdata" then return {} end
      local ok, v = pcall(function() return M.index(base, tonumber(part) and math.tointeger(tonumber(part)) or part) end)
      if not ok then return {} end
      if v == nil and first then v = _G[part] end
      first = false
      base = v
      if base == nil then return {} end
    end
  else
    base, last, prefix, sep = env, text, "", ""
  end
  local names = members(base)
  if not prefix or prefix == "" then
    for k in pairs(_G) do if type(k) == "string" then names[k] = true end end
    -- a REPL environment names what its __index function finds: the tables listed in its metatable's __names
    local mt = getmetatable(base)
    for _, t in ipairs(type(mt) == "table" and rawget(mt, "__names") or {}) do
      for k in pairs(t) do if type(k) == "string" then names[k] = true end end
    end
  end
  local out = {}
  for k in pairs(names) do
    if k:sub(1, #last) == last and k:match("^[%a_][%w_]*$") and not k:match("^__") then
      local ok, v = pcall(function() return base[k] end)
      if sep == ":" and not (ok and type(v) == "function") then goto skip end
      out[#out + 1] = prefix .. sep .. k
    end
    ::skip::
  end
  table.sort(out)
  return out
end

return M
