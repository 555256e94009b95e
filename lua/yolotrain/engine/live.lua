-- Live changes of a running training: what trainer:set{...} may change, how each change is applied, and how the
-- history is written (args.yaml, checkpoints) so that a resumed run replays it exactly (docs/cli.md "Live changes").
--
--   live.KEYS                      the arguments that may change while training, in the order they are applied
--   live.check(trainer, changes)   -> { {key, value}, ... } checked as on the command line; raises naming the key
--   live.apply(trainer, key, v)    sets it where the running training reads it; returns the old value
--   live.encode(v) / decode(s)     exact text of a value (floats in hexadecimal), for checkpoints and broadcasts
--   live.encode_history(list) / decode_history(text)
local cfgmod = require("yolotrain.cfg")
local utils = require("yolotrain.utils")

local M = {}

M.KEYS = { "epochs", "lr0", "lrf", "momentum", "weight_decay", "mosaic", "close_mosaic", "patience", "save_period" }
local is_live = {}
for i, k in ipairs(M.KEYS) do is_live[k] = i end

-- Why the other arguments cannot change in a running training.
local REASONS = {
  imgsz = "the data loaders, the model's strides and the batch shapes were built for it",
  batch = "the data loaders, gradient accumulation and the weight decay scaling were built for it",
  nbs = "gradient accumulation and the weight decay scaling were computed from it",
  model = "the model is built when the training starts",
  pretrained = "the weights are loaded when the training starts",
  data = "the datasets are read when the training starts",
  optimizer = "the optimizer and its state were built at the start",
  workers = "the loader threads were started with it",
  ranks = "the processes were launched with it",
  device = "the training runs where it was started",
  freeze = "the frozen layers were chosen when the model was built",
  warmup_epochs = "the warmup length was fixed when the training started",
  resume = "it is only read when a training starts",
}

local function refuse(k)
  local why = REASONS[k] or "it is read once, when the training starts"
  error(string.format("'%s' cannot change during a training: %s. Start a new training (or resume) with it. " ..
    "Keys that can change live: %s", k, why, table.concat(M.KEYS, ", ")), 0)
end

-- Checks every change before any is applied: an error leaves the training as it was.
function M.check(trainer, changes)
  if type(changes) ~= "table" then error("trainer:set{key = value, ...} takes a table of changes", 0) end
  local list = {}
  for k, v in pairs(changes) do
    if type(k) ~= "string" then error(string.format("trainer:set: keys are argument names, got %s", tostring(k)), 0) end
    if not is_live[k] and cfgmod.defaults.kinds[k] then refuse(k) end
    local value = cfgmod.check_value(k, v, 0) -- unknown keys get the CLI's "similar arguments" hint
    if value == nil then error(string.format("trainer:set{%s=...}: a value is needed", k), 0) end
    if k == "epochs" and trainer.epoch and value < trainer.epoch + 1 then
      error(string.format("'epochs=%d' is an invalid value: epoch %d is running (epochs counts them from 1)", value,
        trainer.epoch + 1), 0)
    end
    list[#list + 1] = { k, value }
  end
  table.sort(list, function(a, b) return is_live[a[1]] < is_live[b[1]] end)
  return list
end

local function in_warmup(t) return t.ni ~= nil and t.nw ~= nil and t.ni <= t.nw end

local APPLY = {
  epochs = function(t, v)
    t.epochs = v
    if t.lf then t:_setup_scheduler() end
  end,
  lr0 = function(t, v)
    -- the schedule's base: lr = lr0 * lf(epoch) from now on (and warmup ramps towards it)
    if t.optimizer then
      for j = 1, #t.optimizer.initial_lr do t.optimizer.initial_lr[j] = v end
    end
  end,
  lrf = function(t)
    if t.lf then t:_setup_scheduler() end
  end,
  momentum = function(t, v)
    -- SGD's warmup ramps momentum towards args.momentum: it takes the new value at its next step
    if t.optimizer and (t.optimizer.name ~= "SGD" or not in_warmup(t)) then
      for j = 1, t.optimizer:n_groups() do t.optimizer:set_group(j, { momentum = v }) end
    end
  end,
  weight_decay = function(t, v)
    if t.optimizer then
      local accumulate = math.max(utils.round_half_even(t.args.nbs / t.batch_size), 1)
      t.optimizer:set_group(2, { weight_decay = v * t.batch_size * accumulate / t.args.nbs })
    end
  end,
  mosaic = function(t, v)
    if t.train_loader and t.train_loader.set_mosaic then t.train_loader:set_mosaic(v) end
  end,
  close_mosaic = function() end, -- mosaic_close_epoch() reads args.close_mosaic at every epoch start
  patience = function(t, v)
    if t.stopper then t.stopper.patience = (v > 0) and v or math.huge end
  end,
  save_period = function(t, v) t.save_period = v end,
}

function M.apply(trainer, key, value)
  local old = trainer.args[key]
  trainer.args[key] = value
  APPLY[key](trainer, value)
  return old
end

-- ---- exact text ----

function M.encode(v)
  if math.type(v) == "integer" then return "i" .. tostring(v) end
  if type(v) == "number" then return "f" .. string.format("%a", v) end
  if type(v) == "boolean" then return v and "true" or "false" end
  if v == nil then return "nil" end
  return "s" .. tostring(v)
end

function M.decode(s)
  local tag, rest = s:sub(1, 1), s:sub(2)
  if tag == "i" then return math.tointeger(tonumber(rest)) end
  if tag == "f" then return tonumber(rest) + 0.0 end
  if s == "true" then return true end
  if s == "false" then return false end
  if s == "nil" then return nil end
  return rest
end

local FIELDS = { "epoch", "batch", "ni", "key", "value", "old" }

-- One line per change: epoch, batch, ni, key, value, old separated by tabs (values in M.encode's text).
function M.encode_history(list)
  local lines = {}
  for _, e in ipairs(list or {}) do
    lines[#lines + 1] = table.concat({ tostring(e.epoch), tostring(e.batch), tostring(e.ni), e.key, M.encode(e.value),
      M.encode(e.old) }, "\t")
  end
  return table.concat(lines, "\n")
end

-- Raises naming `where` when the text is not such a history (a damaged or foreign checkpoint).
function M.decode_history(text, where)
  local list = {}
  for line in (text or ""):gmatch("[^\n]+") do
    local f = {}
    for part in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = part end
    local e = { epoch = math.tointeger(tonumber(f[1])), batch = math.tointeger(tonumber(f[2])),
      ni = math.tointeger(tonumber(f[3])), key = f[4] }
    if #f ~= #FIELDS or not e.epoch or not e.batch or not e.ni or not is_live[e.key or ""] then
      error(string.format("%s: the live-change history is damaged (line '%s')", where or "checkpoint", line), 0)
    end
    e.value, e.old = M.decode(f[5]), M.decode(f[6])
    list[#list + 1] = e
  end
  return list
end

return M
