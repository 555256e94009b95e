-- Model utilities of the training engine: deep copies, the EMA of the weights, seeding, freezing.
local yt = require("yolotrain.core")
local class = require("yolotrain.class")

local M = {}

-- Deep copy of a model (or any table graph): tables are copied with their metatables, tensors cloned (and kept),
-- shared objects stay shared within the copy. Functions and classes are shared, not copied.
function M.deepcopy(obj, memo)
  memo = memo or {}
  if yt.is_tensor(obj) then
    if memo[obj] then return memo[obj] end
    local c = obj:clone():keep()
    if obj.requires_grad then c:requires_grad_(true) end
    memo[obj] = c
    return c
  end
  if type(obj) ~= "table" or class.is_class(obj) then return obj end
  if memo[obj] then return memo[obj] end
  local mt = getmetatable(obj)
  local copy = {}
  memo[obj] = copy
  for k, v in pairs(obj) do
    copy[M.deepcopy(k, memo)] = M.deepcopy(v, memo)
  end
  return setmetatable(copy, mt)
end

-- ModelEMA: an exponential moving average of every float entry of the state dict (BN buffers included),
-- decay 0.9999 * (1 - exp(-updates / 2000)), as Ultralytics' ModelEMA.
local ModelEMA = class.Object:extend("ModelEMA")
M.ModelEMA = ModelEMA

function ModelEMA:init(model, decay, tau, updates)
  self.ema = M.deepcopy(model)
  self.ema:eval()
  for _, p in self.ema:named_parameters() do
    p:requires_grad_(false)
  end
  self.updates = updates or 0
  self.decay_max, self.tau = decay or 0.9999, tau or 2000
  self.enabled = true
  self:_pair(model)
end

-- the float tensors of both models, paired by name
function ModelEMA:_pair(model)
  local msd = model:state_dict()
  self._ema_list, self._model_list = {}, {}
  for _, e in ipairs(self.ema:state_dict_list()) do
    local name, t = e[1], e[2]
    if t:dtype() == "float32" then
      local src = msd[name]
      if not src then error("ModelEMA: the model has no '" .. name .. "'") end
      self._ema_list[#self._ema_list + 1] = t
      self._model_list[#self._model_list + 1] = src
    end
  end
  self._model = model
end

function ModelEMA:decay(updates) return self.decay_max * (1 - math.exp(-(updates or self.updates) / self.tau)) end

function ModelEMA:update(model)
  if not self.enabled then return end
  if model ~= self._model then self:_pair(model) end
  self.updates = self.updates + 1
  yt.optim.ema_update(self._ema_list, self._model_list, self:decay())
end

-- Copies plain attributes (names, nc, stride, args, ...) from the model.
function ModelEMA:update_attr(model, include)
  for _, k in ipairs(include or { "yaml", "nc", "args", "names", "stride" }) do
    if model[k] ~= nil then self.ema[k] = model[k] end
  end
end

function M.init_seeds(seed) yt.manual_seed(seed or 0) end

-- Freezes parameters whose names contain model.<i>. for i in the freeze list, and always '.dfl'; unfreezes any
-- other float parameter (Ultralytics logs each). Returns the list of frozen names.
function M.freeze_layers(model, freeze, log)
  local names = { ".dfl" }
  if type(freeze) == "number" then
    for i = 0, freeze - 1 do
      names[#names + 1] = "model." .. i .. "."
    end
  elseif type(freeze) == "table" then
    for _, i in ipairs(freeze) do
      names[#names + 1] = "model." .. i .. "."
    end
  end
  local frozen = {}
  for name, p in model:named_parameters() do
    local hit = false
    for _, pat in ipairs(names) do
      if name:find(pat, 1, true) then
        hit = true
        break
      end
    end
    if hit then
      if log then log(string.format("Freezing layer '%s'", name)) end
      p:requires_grad_(false)
      frozen[#frozen + 1] = name
    elseif not p.requires_grad then
      if log then log(string.format("WARNING: setting 'requires_grad=True' for frozen layer '%s'.", name)) end
      p:requires_grad_(true)
    end
  end
  return frozen
end

return M
