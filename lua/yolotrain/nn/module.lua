-- Module: the base of every layer. Children, parameters and buffers are registered in order, so names and
-- iteration order equal PyTorch's state_dict (a module's own parameters, then its buffers, then its children).
local class = require("yolotrain.class")
local yt = require("yolotrain.core")

local Module = class.Object:extend("Module")

-- Parameter(t[, requires_grad]): marks a tensor so that assigning it to a field of a Module registers it as a
-- parameter (`self.scale = Parameter(yt.ones({ c }))`), as torch.nn.Parameter does.
local Parameter = {}
Parameter.__index = Parameter
local function make_parameter(t, requires_grad)
  if not yt.is_tensor(t) then error("Parameter(t): t must be a tensor", 2) end
  return setmetatable({ tensor = t, requires_grad = requires_grad ~= false }, Parameter)
end
rawset(Module, "Parameter", make_parameter) -- a plain function: Module.Parameter(t)

local function is_module(v) return type(v) == "table" and class.is_instance(v, Module) end

-- Registered children, parameters and buffers are not raw fields: they live in self._registered, so that every
-- assignment to their names (a new layer, a new tensor, nil) passes through __newindex and keeps the registry,
-- the state dict and the fields in agreement, as torch's Module.__setattr__ does.
local function instance_index(Cls)
  return function(self, k)
    local r = rawget(self, "_registered")
    if r then
      local v = r[k]
      if v ~= nil then return v end
      -- children are named by strings ("22"): m.model[22] finds them too
      if math.type(k) == "integer" then
        v = r[tostring(k)]
        if v ~= nil then return v end
      end
    end
    return Cls[k]
  end
end

local function remove_name(list, name)
  for i, n in ipairs(list) do
    if n == name then
      table.remove(list, i)
      return
    end
  end
end

local function instance_newindex(self, k, v)
  local r = rawget(self, "_registered")
  if r == nil and (is_module(v) or getmetatable(v) == Parameter) then
    error(
      string.format(
        "%s.%s: call Module.init(self) in %s:init before assigning layers or Parameters",
        self:class_name(),
        tostring(k),
        self:class_name()
      ),
      2
    )
  end
  if r == nil or type(k) ~= "string" then return rawset(self, k, v) end
  if self._children[k] ~= nil then
    if v == nil then return self:remove_module(k) end
    if not is_module(v) then
      error(
        string.format(
          "cannot assign a %s to '%s', a sub-module of %s (assign a Module or nil)",
          type(v),
          k,
          self:class_name()
        ),
        2
      )
    end
    return self:add_module(k, v)
  elseif self._params[k] ~= nil or self._buffers[k] ~= nil then
    local params = self._params[k] ~= nil
    if v == nil then
      if params then
        self._params[k] = nil
        remove_name(self._param_names, k)
      else
        self._buffers[k] = nil
        remove_name(self._buffer_names, k)
      end
      r[k] = nil
      return
    end
    if getmetatable(v) == Parameter then return self:register_parameter(k, v.tensor, v.requires_grad) end
    if not yt.is_tensor(v) then
      error(
        string.format(
          "cannot assign a %s to '%s', a %s of %s (assign a tensor or nil)",
          type(v),
          k,
          params and "parameter" or "buffer",
          self:class_name()
        ),
        2
      )
    end
    if params then return self:register_parameter(k, v, v.requires_grad) end
    return self:register_buffer(k, v)
  elseif is_module(v) then
    return self:add_module(k, v)
  elseif getmetatable(v) == Parameter then
    return self:register_parameter(k, v.tensor, v.requires_grad)
  end
  rawset(self, k, v)
end

-- every subclass gets the same field handling (class.lua gives plain classes a table __index)
local base_extend = Module.extend
local function module_extend(Parent, name)
  local Cls, P = base_extend(Parent, name)
  rawset(Cls, "__index", instance_index(Cls))
  rawset(Cls, "__newindex", instance_newindex)
  return Cls, P
end
rawset(Module, "extend", module_extend)
rawset(Module, "__index", instance_index(Module))
rawset(Module, "__newindex", instance_newindex)

function Module:init()
  rawset(self, "_registered", nil)
  self._children, self._child_names = {}, {}
  self._params, self._param_names = {}, {}
  self._buffers, self._buffer_names = {}, {}
  self.training = true
  rawset(self, "_registered", {})
end

local function check_name(self, name, what)
  if rawget(self, "_registered") == nil then
    error(string.format("%s: call Module.init(self) in %s:init before adding %s", what, self:class_name(), what), 3)
  end
  name = tostring(name)
  if rawget(self, name) ~= nil then rawset(self, name, nil) end -- a plain field of that name gives way
  return name
end

-- Registers a child under name (keeping its place when the name exists): what `self.name = m` does.
function Module:add_module(name, m)
  name = check_name(self, name, "a sub-module")
  if not is_module(m) then error(string.format("add_module('%s'): not a Module", name), 2) end
  if not self._children[name] then table.insert(self._child_names, name) end
  self._children[name] = m
  self._registered[name] = m
  return m
end

-- Removes a child (used by fuse, like Ultralytics' delattr(m, "bn")); `self.name = nil` does the same.
function Module:remove_module(name)
  if not self._children[name] then return end
  self._children[name] = nil
  self._registered[name] = nil
  remove_name(self._child_names, name)
end

function Module:register_parameter(name, t, requires_grad)
  name = check_name(self, name, "a parameter")
  if not self._params[name] then table.insert(self._param_names, name) end
  t:keep()
  if requires_grad ~= false then t:requires_grad_(true) end
  self._params[name] = t
  self._registered[name] = t
  return t
end

function Module:register_buffer(name, t)
  name = check_name(self, name, "a buffer")
  if not self._buffers[name] then table.insert(self._buffer_names, name) end
  t:keep()
  self._buffers[name] = t
  self._registered[name] = t
  return t
end

function Module:children()
  local i = 0
  return function()
    i = i + 1
    local name = self._child_names[i]
    if name then return name, self._children[name] end
  end
end

-- Depth-first (self first), each distinct module once, with its dotted name.
function Module:named_modules(prefix, seen, out)
  seen, out = seen or {}, out or {}
  if seen[self] then return out end
  seen[self] = true
  table.insert(out, { prefix or "", self })
  for _, name in ipairs(self._child_names) do
    local child = self._children[name]
    child:named_modules((prefix and prefix ~= "") and (prefix .. "." .. name) or name, seen, out)
  end
  return out
end

function Module:modules()
  local list, i = self:named_modules(), 0
  return function()
    i = i + 1
    if list[i] then return list[i][2] end
  end
end

local function collect(self, kind, names_key, prefix, out, seen)
  seen = seen or {}
  if seen[self] then return out end
  seen[self] = true
  for _, n in ipairs(self[names_key]) do
    table.insert(out, { prefix .. n, self[kind][n] })
  end
  for _, cname in ipairs(self._child_names) do
    collect(self._children[cname], kind, names_key, prefix .. cname .. ".", out, seen)
  end
  return out
end

local function iterate(list)
  local i = 0
  return function()
    i = i + 1
    if list[i] then return list[i][1], list[i][2] end
  end
end

function Module:named_parameters() return iterate(collect(self, "_params", "_param_names", "", {})) end
function Module:named_buffers() return iterate(collect(self, "_buffers", "_buffer_names", "", {})) end

function Module:parameters()
  local list = {}
  for _, p in self:named_parameters() do
    list[#list + 1] = p
  end
  return list
end

-- Ordered list of {name, tensor}: each module's parameters, then its buffers, then its children.
function Module:state_dict_list(prefix, out, seen)
  prefix, out, seen = prefix or "", out or {}, seen or {}
  if seen[self] then return out end
  seen[self] = true
  for _, n in ipairs(self._param_names) do
    table.insert(out, { prefix .. n, self._params[n] })
  end
  for _, n in ipairs(self._buffer_names) do
    table.insert(out, { prefix .. n, self._buffers[n] })
  end
  for _, cname in ipairs(self._child_names) do
    self._children[cname]:state_dict_list(prefix .. cname .. ".", out, seen)
  end
  return out
end

-- name -> tensor (the live tensors, not copies); the order is in state_dict_list / state_dict_names.
function Module:state_dict()
  local sd = {}
  for _, e in ipairs(self:state_dict_list()) do
    sd[e[1]] = e[2]
  end
  return sd
end

function Module:state_dict_names()
  local names = {}
  for _, e in ipairs(self:state_dict_list()) do
    names[#names + 1] = e[1]
  end
  return names
end

local function shape_str(t) return "[" .. table.concat(t:shape(), ", ") .. "]" end

-- Copies tensors in by name. opts.strict (default true): missing, unexpected or shape-mismatched keys are an
-- error listing them; non-strict copies what matches and returns the report.
function Module:load_state_dict(sd, opts)
  self:release_plans() -- the fused inference plans hold copies of the weights
  opts = opts or {}
  local strict = opts.strict ~= false
  local own = self:state_dict_list()
  local missing, mismatched, unexpected, loaded = {}, {}, {}, 0
  local seen = {}
  for _, e in ipairs(own) do
    local name, dst = e[1], e[2]
    seen[name] = true
    local src = sd[name]
    if src == nil then
      table.insert(missing, name)
    elseif not yt.is_tensor(src) then
      table.insert(mismatched, name .. " (not a tensor)")
    elseif shape_str(src) ~= shape_str(dst) then
      table.insert(mismatched, string.format("%s: checkpoint %s, model %s", name, shape_str(src), shape_str(dst)))
    elseif not strict or (#missing == 0 and #mismatched == 0) then
      -- dtype conversions are not silent: an int64 counter stays int64, a float stays float
      if src:dtype() ~= dst:dtype() then
        table.insert(mismatched, string.format("%s: checkpoint %s, model %s", name, src:dtype(), dst:dtype()))
      else
        dst:copy_(src)
        loaded = loaded + 1
      end
    end
  end
  for name in pairs(sd) do
    if not seen[name] then table.insert(unexpected, name) end
  end
  table.sort(unexpected)
  local report = { missing = missing, unexpected = unexpected, mismatched = mismatched, loaded = loaded, total = #own }
  if strict and (#missing > 0 or #unexpected > 0 or #mismatched > 0) then
    local parts = {}
    local function list(title, t)
      if #t == 0 then return end
      local shown = {}
      for i = 1, math.min(#t, 10) do
        shown[i] = "  " .. t[i]
      end
      if #t > 10 then shown[#shown + 1] = string.format("  ... and %d more", #t - 10) end
      table.insert(parts, string.format("%s (%d):\n%s", title, #t, table.concat(shown, "\n")))
    end
    list("missing keys", missing)
    list("unexpected keys", unexpected)
    list("shape mismatches", mismatched)
    error("load_state_dict (strict): " .. table.concat(parts, "\n"), 2)
  end
  return report
end

function Module:train(mode)
  if mode == nil then mode = true end
  for m in self:modules() do
    m.training = mode
  end
  return self
end

function Module:eval() return self:train(false) end

-- Frees the prepared inference plans of every layer now (a fused Conv's yt.nn.conv2d_plan, nn/modules.lua); the
-- next inference forward makes them again. Layers that keep such state define release_plan.
function Module:release_plans()
  for m in self:modules() do
    if m.release_plan then m:release_plan() end
  end
  return self
end

function Module:forward() error(self:class_name() .. ":forward is not implemented", 2) end

Module.__call = function(self, ...) return self:forward(...) end

-- Number of parameters (and of those that require gradients).
function Module:num_params()
  local n, g = 0, 0
  for _, p in self:named_parameters() do
    n = n + p:numel()
    if p.requires_grad then g = g + p:numel() end
  end
  return n, g
end

return Module
