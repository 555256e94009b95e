-- Callback events of the trainer, validator and predictor: Ultralytics' names, fired at its points.
-- Unlike Ultralytics, optimizer_step, on_before_zero_grad and on_params_update are fired too.
local M = {}
local errors = require("yolotrain.utils.errors")

M.events = {
  -- trainer
  "on_pretrain_routine_start",
  "on_pretrain_routine_end",
  "on_train_start",
  "on_train_epoch_start",
  "on_train_batch_start",
  "optimizer_step",
  "on_before_zero_grad",
  "on_batch_end",
  "on_train_batch_end",
  "on_train_epoch_end",
  "on_fit_epoch_end",
  "on_model_save",
  "on_train_end",
  "on_params_update",
  "teardown",
  -- validator
  "on_val_start",
  "on_val_batch_start",
  "on_val_batch_end",
  "on_val_end",
  -- predictor
  "on_predict_start",
  "on_predict_batch_start",
  "on_predict_postprocess_end",
  "on_predict_batch_end",
  "on_predict_end",
  -- exporter (yolotrain.engine.exporter)
  "on_export_start",
  "on_export_end",
}

local known = {}
for _, e in ipairs(M.events) do
  known[e] = true
end
M.known = known

-- event -> list of functions
function M.get_default_callbacks()
  local t = {}
  for _, e in ipairs(M.events) do
    t[e] = {}
  end
  return t
end

-- The integrations a trainer gets (Ultralytics' add_integration_callbacks), each a module returning
-- { callbacks = event -> function, enabled = function(trainer) -> boolean }.
M.integrations = { "yolotrain.utils.callbacks.tensorboard" }

-- Adds the callbacks of every enabled integration to the instance, each once (a callbacks table shared by two
-- instances gets them once). The functions are the modules' own, so a recipe can find and remove them:
--   local tb = require("yolotrain.utils.callbacks.tensorboard")
--   for event, fn in pairs(tb.callbacks) do trainer:remove_callback(event, fn) end
function M.add_integration_callbacks(instance)
  for _, name in ipairs(M.integrations) do
    local integration = require(name)
    if integration.enabled(instance) then
      local events = {}
      for event in pairs(integration.callbacks) do
        events[#events + 1] = event
      end
      table.sort(events)
      for _, event in ipairs(events) do
        local fn, list, present = integration.callbacks[event], instance.callbacks[event], false
        for _, f in ipairs(list) do
          present = present or f == fn
        end
        if not present then list[#list + 1] = fn end
      end
    end
  end
end

local function closest(name)
  local best, best_d
  for _, e in ipairs(M.events) do
    -- Levenshtein distance
    local la, lb = #name, #e
    local prev = {}
    for j = 0, lb do
      prev[j] = j
    end
    for i = 1, la do
      local cur = { [0] = i }
      for j = 1, lb do
        local cost = (name:byte(i) == e:byte(j)) and 0 or 1
        cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      end
      prev = cur
    end
    if not best_d or prev[lb] < best_d then
      best, best_d = e, prev[lb]
    end
  end
  return best
end

function M.check_event(event, level)
  if not known[event] then
    error(
      string.format("unknown callback event '%s' (did you mean '%s'?)", tostring(event), closest(tostring(event))),
      (level or 1) + 1
    )
  end
end

-- Adds the callback methods to a class whose instances keep `self.callbacks` (event -> list).
function M.mixin(Cls)
  function Cls:add_callback(event, fn)
    M.check_event(event, 2)
    assert(
      type(fn) == "function" or (type(fn) == "table" and getmetatable(fn) and getmetatable(fn).__call),
      "add_callback: the callback must be a function"
    )
    table.insert(self.callbacks[event], fn)
  end

  function Cls:set_callback(event, fn)
    M.check_event(event, 2)
    self.callbacks[event] = { fn }
  end

  function Cls:clear_callback(event)
    M.check_event(event, 2)
    self.callbacks[event] = {}
  end

  -- Removes every entry of fn from the event's callbacks; returns how many there were.
  function Cls:remove_callback(event, fn)
    M.check_event(event, 2)
    local kept, removed = {}, 0
    for _, f in ipairs(self.callbacks[event]) do
      if f == fn then
        removed = removed + 1
      else
        kept[#kept + 1] = f
      end
    end
    self.callbacks[event] = kept
    return removed
  end

  -- Calls every callback of the event with self. A raising callback: its error and traceback are reported;
  -- with callback_errors = "warn" the run carries on, otherwise the error propagates (the trainer stops cleanly).
  function Cls:run_callbacks(event)
    local list = self.callbacks[event]
    if not list then return end
    for i = 1, #list do
      local ok, err = xpcall(list[i], errors.capture, self)
      if not ok then
        local mode = self.args and self.args.callback_errors or "stop"
        if not err.callback_error then
          err.message = string.format("callback %d of '%s' failed: %s", i, event, err.message)
          err.callback_error, err.event = true, event
        end
        if mode == "warn" then
          io.stderr:write("WARNING: " .. tostring(err) .. "\n")
        else
          error(err, 0)
        end
      end
    end
  end
end

return M
