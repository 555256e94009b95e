-- Engine_Validator: the validation loop of Ultralytics 8.2's BaseValidator, in Lua, for task validators to
-- subclass (Detection_Validator in yolotrain.models.yolo.detect.val).
--
--   local v = Detection_Validator{ args = { data = "coco128.yaml", imgsz = 320, batch = 16 } }
--   local metrics = v(nil, "runs/detect/train/weights/best.safetensors")   -- standalone: builds the model
--   print(metrics["metrics/mAP50-95(B)"], metrics.maps[0])
--   -- during training the trainer calls v(trainer): EMA model, val losses, no model building
--
-- Overridable steps (Ultralytics' names): preprocess, postprocess, init_metrics, update_metrics,
-- finalize_metrics, get_stats, check_stats, print_results, get_desc, build_dataset, get_dataloader,
-- plot_val_samples, plot_predictions. Callbacks: on_val_start, on_val_batch_start, on_val_batch_end, on_val_end.
local yt = require("yolotrain.core")
local class = require("yolotrain.class")
local cfgmod = require("yolotrain.cfg")
local callbacks = require("yolotrain.utils.callbacks")
local utils = require("yolotrain.utils")

local Engine_Validator = class.Object:extend("Engine_Validator")
callbacks.mixin(Engine_Validator)

local log = utils.log
rawset(Engine_Validator, "log", log)

-- Validator arguments: defaults overlaid with args. Known keys are type-checked; keys the trainer adds
-- (save_dir, ...) pass through.
local function make_args(args)
  local out = cfgmod.get_cfg({})
  for k, v in pairs(args or {}) do
    if type(k) ~= "string" then error("validator args: keys must be strings", 3) end
    if cfgmod.defaults.kinds[k] ~= nil then
      out[k] = cfgmod.check_value(k, v, 4)
    else
      out[k] = v
    end
  end
  return out
end
rawset(Engine_Validator, "make_args", make_args)

local function is_loader(x) return type(x) == "table" and (x.iter ~= nil or x.next ~= nil) or type(x) == "userdata" end

-- Engine_Validator{ dataloader = , save_dir = , args = , _callbacks = } or
-- Engine_Validator(dataloader, save_dir, args, _callbacks)
function Engine_Validator:init(dataloader, save_dir, args, _callbacks)
  if
    type(dataloader) == "table"
    and save_dir == nil
    and args == nil
    and _callbacks == nil
    and not is_loader(dataloader)
  then
    local kw = dataloader
    dataloader, save_dir, args, _callbacks = kw.dataloader, kw.save_dir, kw.args, kw._callbacks
  end
  self.args = make_args(args)
  self.dataloader = dataloader
  self.stride = nil
  self.data = nil
  self.training = true
  self.names = nil
  self.seen = 0
  self.stats = nil
  self.confusion_matrix = nil
  self.nc = nil
  self.jdict = nil
  self.speed = { preprocess = 0.0, inference = 0.0, loss = 0.0, postprocess = 0.0 }
  self.save_dir = save_dir or self:get_save_dir()
  utils.mkdir_p(self.args.save_txt and utils.join(self.save_dir, "labels") or self.save_dir)
  if self.args.conf == nil then self.args.conf = 0.001 end
  local imgsz = self.args.imgsz
  if type(imgsz) == "table" then
    local m = 0
    for _, v in ipairs(imgsz) do
      m = math.max(m, v)
    end
    imgsz = m
  end
  self.args.imgsz = math.tointeger(imgsz) or math.floor(imgsz)
  self.plots = {}
  self.callbacks = _callbacks or callbacks.get_default_callbacks()
end

-- runs/<task>/val, val2, ... (name= and project= as Ultralytics)
function Engine_Validator:get_save_dir() return utils.run_dir(self.args, "val", self.args.exist_ok) end

-- ---- the loop ----

local function iterate(loader)
  if type(loader) == "table" and loader.iter then return loader:iter() end
  return function() return loader:next() end
end

local function loader_len(loader)
  local ok, n = pcall(function() return #loader end)
  if ok and type(n) == "number" then return n end
  if loader.len then return loader:len() end
  return 0
end

local function dataset_size(loader)
  if type(loader) == "table" then
    if loader.dataset_size then return loader:dataset_size() end
    if loader.dataset then return #loader.dataset end
  end
  return nil
end

-- validator(trainer) during training; validator(nil, model_or_path) standalone.
Engine_Validator.__call = function(self, trainer, model) return self:run(trainer, model) end

function Engine_Validator:run(trainer, model)
  self.training = trainer ~= nil
  local prev_grad = yt.set_grad_enabled(false)
  local ok, res = pcall(self._run, self, trainer, model)
  yt.set_grad_enabled(prev_grad)
  if not ok then error(res, 0) end
  return res
end

function Engine_Validator:_run(trainer, model)
  if self.training then
    self.data = trainer.data
    model = (trainer.ema and trainer.ema.ema) or trainer.model
    self.loss = nil
    local possible_stop = trainer.stopper and trainer.stopper.possible_stop
    self.args.plots = self.args.plots and (possible_stop or trainer.epoch == trainer.epochs - 1) or false
    model:eval()
  else
    model = self:setup_model(model)
    model:eval()
    self.model = model
    local max_stride = utils.max_stride(model)
    self.stride = max_stride
    self.args.imgsz = utils.check_imgsz(self.args.imgsz, max_stride, 1)
    if not self.dataloader then
      local split = self.args.split or "val"
      local path = self.data and self.data[split]
      if path == nil then error(string.format("Dataset '%s' has no '%s' split", tostring(self.args.data), split), 0) end
      local batch = cfgmod.train_batch_size(tonumber(self.args.batch) or cfgmod.defaults.values.batch)
      self.args.batch = math.floor(batch)
      self.dataloader = self:get_dataloader(path, self.args.batch)
    end
  end
  self.model = model
  self:run_callbacks("on_val_start")
  local dt = { 0.0, 0.0, 0.0, 0.0 }
  local nb = loader_len(self.dataloader)
  self:init_metrics(model)
  self.jdict = {}
  local pbar = require("yolotrain.utils.progress")(nb)
  local desc = self:get_desc()
  local batch_i = 0
  local nimages = 0
  local ok, err = pcall(function()
    for batch in iterate(self.dataloader) do
      self:run_callbacks("on_val_batch_start")
      self.batch_i = batch_i
      yt.scope_begin()
      local sok, serr = xpcall(function()
        local t0 = yt.machine.now()
        batch = self:preprocess(batch)
        local t1 = yt.machine.now()
        local preds, raw = model(batch.img)
        local t2 = yt.machine.now()
        if self.training then
          local _, items = model:loss(batch, raw)
          local l = items:tolist()
          if not self.loss then
            self.loss = l
          else
            for k = 1, #l do
              self.loss[k] = self.loss[k] + l[k]
            end
          end
        end
        local t3 = yt.machine.now()
        preds = self:postprocess(preds)
        local t4 = yt.machine.now()
        dt[1], dt[2], dt[3], dt[4] = dt[1] + t1 - t0, dt[2] + t2 - t1, dt[3] + t3 - t2, dt[4] + t4 - t3
        nimages = nimages + batch.img:shape(1)
        self:update_metrics(preds, batch)
        if self.args.plots and batch_i < 3 then
          self:plot_val_samples(batch, batch_i)
          self:plot_predictions(batch, preds, batch_i)
        end
        self.current_batch = batch
        self:run_callbacks("on_val_batch_end")
        self.current_batch = nil
      end, function(e)
        if type(e) == "table" then return e end
        return debug.traceback(tostring(e), 2)
      end)
      yt.scope_end()
      if not sok then error(serr, 0) end
      pbar:update(desc)
      batch_i = batch_i + 1
    end
  end)
  pbar:close()
  if not ok then error(err, 0) end
  self.nb_run = batch_i
  local stats = self:get_stats()
  self:check_stats(stats)
  local n = dataset_size(self.dataloader) or nimages
  if n == 0 then n = 1 end
  self.speed = {
    preprocess = dt[1] / n * 1e3,
    inference = dt[2] / n * 1e3,
    loss = dt[3] / n * 1e3,
    postprocess = dt[4] / n * 1e3,
  }
  self:finalize_metrics()
  self:print_results()
  self:run_callbacks("on_val_end")
  if self.training then
    local results = {}
    for k, v in pairs(stats) do
      results[k] = v
    end
    local avg = {}
    for k, v in ipairs(self.loss or { 0, 0, 0 }) do
      avg[k] = v / math.max(batch_i, 1)
    end
    for k, v in pairs(trainer:label_loss_items(avg, "val")) do
      results[k] = v
    end
    for k, v in pairs(results) do
      if type(v) == "number" then results[k] = math.floor(v * 1e5 + 0.5) / 1e5 end
    end
    return self:wrap_results(results)
  end
  log(
    "Speed: %.1fms preprocess, %.1fms inference, %.1fms loss, %.1fms postprocess per image",
    self.speed.preprocess,
    self.speed.inference,
    self.speed.loss,
    self.speed.postprocess
  )
  if self.args.plots or self.args.save_json then log("Results saved to %s", utils.colorstr("bold", self.save_dir)) end
  return self:wrap_results(stats)
end

-- The flat results table, with the metrics object reachable through it (res.maps, res.box, res.speed, ...).
function Engine_Validator:wrap_results(flat)
  local metrics = self.metrics
  return setmetatable(flat, {
    __index = function(_, k)
      if k == "fitness" or metrics == nil then return nil end
      return metrics[k]
    end,
  })
end

-- Builds the model for a standalone run (task validators override).
function Engine_Validator:setup_model(model)
  error("Engine_Validator:setup_model must be provided by a task validator (Detection_Validator)", 2)
end

function Engine_Validator:get_dataloader(dataset_path, batch_size)
  error("get_dataloader must be provided by a task validator (Detection_Validator)", 2)
end

function Engine_Validator:build_dataset(img_path, mode, batch)
  error("build_dataset must be provided by a task validator (Detection_Validator)", 2)
end

function Engine_Validator:preprocess(batch) return batch end
function Engine_Validator:postprocess(preds) return preds end
function Engine_Validator:init_metrics(model) end
function Engine_Validator:update_metrics(preds, batch) end
function Engine_Validator:finalize_metrics() end
function Engine_Validator:get_stats() return {} end
function Engine_Validator:check_stats(stats) end
function Engine_Validator:print_results() end
function Engine_Validator:get_desc() return "" end
function Engine_Validator:plot_val_samples(batch, ni) end
function Engine_Validator:plot_predictions(batch, preds, ni) end
function Engine_Validator:on_plot(name, data) self.plots[name] = { data = data, timestamp = yt.machine.now() } end

return Engine_Validator
