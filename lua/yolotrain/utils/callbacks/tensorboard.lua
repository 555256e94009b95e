-- TensorBoard logging of a training, as Ultralytics' TensorBoard callback. With the `tensorboard` setting on (the
-- default; tensorboard=true/false decides for one run) the trainer writes events.out.tfevents.* into its run
-- directory, and `tensorboard --logdir <run dir>` shows them. The scalars are results.csv's, at step epoch + 1:
--   on_train_epoch_end   train/box_loss, train/cls_loss, train/dfl_loss (the epoch's means), lr/pg0..lr/pg2
--   on_fit_epoch_end     metrics/precision(B) ... metrics/mAP50-95(B), val/box_loss ... ; final_eval's
--                        validation of best fires it once more, at the last epoch's step, as in Ultralytics
-- Each event's records are flushed at its end: TensorBoard follows the run as it goes, and a killed run keeps what
-- it logged. A resumed run writes a new file beside the old ones; for each tag TensorBoard keeps the newest value
-- of a step logged again (its preemption of steps >= a restarted one). A write that fails is one warning, and the
-- run carries on without logging. The model graph is not logged.
local yt = require("yolotrain.core")
local utils = require("yolotrain.utils")

local M = {}

-- trainer -> its open writer (weak keys: a trainer that is collected takes its writer along, whose GC closes it)
local writers = setmetatable({}, { __mode = "k" })

-- Whether the trainer logs: its tensorboard= argument, else the user setting.
function M.enabled(trainer)
  local on = trainer.args and trainer.args.tensorboard
  if on == nil then on = require("yolotrain.utils.settings").get("tensorboard") end
  return on == true
end

-- The trainer's open writer (yt.io.tfevents_writer), or nil: its path() is the event file.
function M.writer(trainer) return writers[trainer] end

local function close(trainer)
  local w = writers[trainer]
  writers[trainer] = nil
  if not w then return true end
  return pcall(w.close, w)
end

local function stop_logging(trainer, err)
  close(trainer)
  utils.log("WARNING: TensorBoard: %s; not logging the rest of this run", utils.strip_where(err))
end

-- The keys of scalars whose values are numbers: those of `order` first, in its order, then the others sorted.
local function ordered_keys(scalars, order)
  local keys, seen = {}, {}
  for _, k in ipairs(order or {}) do
    if type(scalars[k]) == "number" and not seen[k] then
      keys[#keys + 1], seen[k] = k, true
    end
  end
  local rest = {}
  for k, v in pairs(scalars) do
    if type(k) == "string" and type(v) == "number" and not seen[k] then rest[#rest + 1] = k end
  end
  table.sort(rest)
  for _, k in ipairs(rest) do
    keys[#keys + 1] = k
  end
  return keys
end

-- Logs each group { scalars, key order } at step epoch + 1, then flushes.
local function log_scalars(trainer, groups)
  local w = writers[trainer]
  if not w then return end
  local step = (trainer.epoch or 0) + 1
  local ok, err = pcall(function()
    for _, g in ipairs(groups) do
      for _, k in ipairs(ordered_keys(g[1], g[2])) do
        w:scalar(k, step, g[1][k])
      end
    end
    w:flush()
  end)
  if not ok then stop_logging(trainer, err) end
end

local function on_pretrain_routine_start(trainer)
  close(trainer)
  local ok, w = pcall(yt.io.tfevents_writer, trainer.save_dir)
  if not ok then
    utils.log("WARNING: TensorBoard not initialized correctly, not logging this run. %s", utils.strip_where(w))
    return
  end
  writers[trainer] = w
  utils.log(
    "%sStart with 'tensorboard --logdir %s', view at http://localhost:6006/",
    utils.colorstr("TensorBoard: "),
    trainer.save_dir
  )
end

local function on_train_epoch_end(trainer)
  local groups = {}
  if trainer.tloss then
    groups[1] = { trainer:label_loss_items(trainer.tloss, "train"), trainer:label_loss_items(nil, "train") }
  end
  groups[#groups + 1] = { trainer.lr or {} }
  log_scalars(trainer, groups)
end

local function on_fit_epoch_end(trainer) log_scalars(trainer, { { trainer.metrics or {}, trainer.metric_keys } }) end

local function teardown(trainer)
  local ok, err = close(trainer)
  if not ok then utils.log("WARNING: TensorBoard: %s", utils.strip_where(err)) end
end

M.callbacks = {
  on_pretrain_routine_start = on_pretrain_routine_start,
  on_train_epoch_end = on_train_epoch_end,
  on_fit_epoch_end = on_fit_epoch_end,
  teardown = teardown,
}

return M
