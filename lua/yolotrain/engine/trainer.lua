-- Engine_Trainer: the training lifecycle of Ultralytics 8.2's BaseTrainer, in Lua, for recipes to subclass.
--
--   local Custom, Base = detect.Detection_Trainer:extend("Custom")
--   function Custom:build_model(cfg, weights) ... end
--   local t = Custom{ overrides = { data = "...", model = "yolov8n.yaml", epochs = 3 } }
--   t:add_callback("on_train_epoch_end", function(trainer) print(trainer.last) end)
--   t:DDP_or_normally_train()
--
-- Differences from Ultralytics, on purpose: checkpoints are safetensors written atomically and hold both the
-- EMA weights (the usable model) and the raw training weights, optimizer state and pending accumulated
-- gradients, so an interrupted run resumes to bitwise the same result; the three events Ultralytics defines but
-- never fires (optimizer_step, on_before_zero_grad, on_params_update) fire here.
local yt = require("yolotrain.core")
local class = require("yolotrain.class")
local cfgmod = require("yolotrain.cfg")
local callbacks = require("yolotrain.utils.callbacks")
local utils = require("yolotrain.utils")
local checkpoint = require("yolotrain.engine.checkpoint")
local torch_utils = require("yolotrain.utils.torch_utils")
local errors = require("yolotrain.utils.errors")
local cjson = require("cjson")
local live = require("yolotrain.engine.live")

local Engine_Trainer = class.Object:extend("Engine_Trainer")
callbacks.mixin(Engine_Trainer)

-- The optimizer the trainer drives: the C optimizer (yt.optim) plus what the schedule needs to remember.
local Optimizer = class.Object:extend("Optimizer")
Engine_Trainer.Optimizer = Optimizer

function Optimizer:init(kind, groups)
  self.impl = yt.optim.new(kind, groups)
  self.name = kind
  self.initial_lr = {}
  for j, g in ipairs(groups) do
    self.initial_lr[j] = g.lr
  end
end
function Optimizer:step() self.impl:step() end
function Optimizer:zero_grad() self.impl:zero_grad() end
function Optimizer:get_group(i) return self.impl:get_group(i) end
function Optimizer:set_group(i, fields) self.impl:set_group(i, fields) end
function Optimizer:n_groups() return self.impl:n_groups() end
function Optimizer:state_tensors() return self.impl:state_tensors() end
function Optimizer:load_state_tensors(t) self.impl:load_state_tensors(t) end

local log = utils.log

-- ---- construction ----

-- Engine_Trainer{ cfg = , overrides = , _callbacks = } or Engine_Trainer(cfg, overrides, _callbacks)
function Engine_Trainer:init(cfg, overrides, _callbacks)
  if type(cfg) == "table" and overrides == nil and (cfg.overrides ~= nil or cfg.cfg ~= nil or next(cfg) == nil) then
    cfg, overrides, _callbacks = cfg.cfg, cfg.overrides, cfg._callbacks
  end
  if type(cfg) == "string" then cfg = cfgmod.load_args_yaml(cfg) end
  local base = cfgmod.get_cfg(cfg or {})
  self.args = cfgmod.get_cfg(overrides or {}, base)
  self.callbacks = _callbacks or callbacks.get_default_callbacks()
  self.rank = tonumber(os.getenv("OMPI_COMM_WORLD_RANK") or os.getenv("RANK") or "-1") or -1
  self.world_size = tonumber(os.getenv("OMPI_COMM_WORLD_SIZE") or os.getenv("WORLD_SIZE") or "1") or 1
  if self.world_size <= 1 then self.rank = -1 end
  self:check_resume(overrides or {})
  -- TensorBoard and any other integration, on the process that logs (as Ultralytics: RANK -1 or 0)
  if self:is_main() then callbacks.add_integration_callbacks(self) end
  self.validator, self.metrics, self.plots = nil, nil, {}
  -- the same seed on every rank and in a single process (Ultralytics adds the rank): rank 0's initial weights,
  -- broadcast to all, are then those of a single-process run, and data randomness is keyed on positions
  torch_utils.init_seeds(self.args.seed)

  if self.world_size > 1 then
    -- every rank runs this recipe: start MPI now so all ranks agree on the run directory
    self.dist = require("yolotrain.engine.distributed").init(self)
  end
  self.save_dir = self:get_save_dir()
  if self.dist then self.save_dir = self.dist:broadcast_string(self.save_dir) end
  self.args.name = utils.basename(self.save_dir)
  self.wdir = utils.join(self.save_dir, "weights")
  if self:is_main() then
    utils.mkdir_p(self.wdir)
    -- half-written checkpoints, results.csv and plots of a killed run
    yt.sys.remove_stale_temps(self.wdir)
    yt.sys.remove_stale_temps(self.save_dir)
    self.args.save_dir = self.save_dir
    self:save_args()
  end
  self.last = utils.join(self.wdir, "last.safetensors")
  self.best = utils.join(self.wdir, "best.safetensors")
  self.save_period = self.args.save_period
  self.batch_size = cfgmod.train_batch_size(self.args.batch, utils.log)
  self.epochs = self.args.epochs
  self.start_epoch = 0
  self.model = self.args.model
  self.data = self:get_dataset()
  self.trainset, self.testset = self.data.train, self.data.val or self.data.test
  self.ema = nil
  self.lf = nil
  self.best_fitness, self.fitness = nil, nil
  self.loss, self.tloss, self.loss_items = nil, nil, nil
  self.loss_names = { "Loss" }
  self.csv = utils.join(self.save_dir, "results.csv")
  self.plot_idx = { 0, 1, 2 }
  self.stop = false
  self.live_changes = self.live_changes or {}
end

function Engine_Trainer:is_main() return self.rank == -1 or self.rank == 0 end

function Engine_Trainer:get_save_dir()
  if self.args.save_dir and self.args.resume then return self.args.save_dir end
  return utils.run_dir(self.args, self.args.mode or "train", self.args.exist_ok or self.args.resume)
end

function Engine_Trainer:save_args()
  local map, order = {}, {}
  for _, k in ipairs(cfgmod.defaults.order) do
    local v = self.args[k]
    if v == nil or v == cfgmod.NONE then v = yt.io.null end
    map[k] = v
    order[#order + 1] = k
  end
  map.save_dir = self.args.save_dir
  order[#order + 1] = "save_dir"
  -- the live changes (trainer:set), oldest first; the values above are the current ones
  if self.live_changes and #self.live_changes > 0 then
    local history = {}
    for i, e in ipairs(self.live_changes) do
      history[i] = { epoch = e.epoch + 1, batch = e.batch, key = e.key, value = e.value, old = e.old }
    end
    map[cfgmod.HISTORY_KEY] = history
    order[#order + 1] = cfgmod.HISTORY_KEY
  end
  utils.atomic_write(utils.join(self.save_dir, "args.yaml"), yt.io.dump_yaml(map, order))
end

-- ---- control: stop, live changes, attach ----

-- Ends training at the next step boundary, saving last; reason: "interrupt" (SIGINT), "terminate" (SIGTERM) or "user" (stop()).
function Engine_Trainer:request_stop(reason)
  self.stop = true
  self.interrupted = true
  self.stop_reason = reason
end

-- trainer:set{lr0 = 0.002, epochs = 50, ...}: changes that hold (yolotrain.engine.live). Each key is checked as on
-- the command line and all are checked before any applies; keys the running training cannot change are refused
-- with the reason. Applied now (under ranks=N: on every rank at the next step boundary), logged, written to
-- args.yaml's history and the checkpoints, replayed by resume. Returns the history entries it added.
function Engine_Trainer:set(changes)
  local list = live.check(self, changes)
  if self.dist then
    self._live_pending = self._live_pending or {}
    for _, c in ipairs(list) do
      self._live_pending[#self._live_pending + 1] = c
    end
    log("set: %d change(s) queued for every rank at the next step boundary", #list)
    return list
  end
  return self:_apply_live(list)
end

function Engine_Trainer:_apply_live(list)
  if self.epoch == nil then -- not training yet: the arguments of the training to come
    for _, c in ipairs(list) do
      live.apply(self, c[1], c[2])
    end
    return {}
  end
  local added = {}
  for _, c in ipairs(list) do
    local old = live.apply(self, c[1], c[2])
    local e = { epoch = self.epoch, batch = self.batch_i or 0, ni = self.ni or -1, key = c[1], value = c[2], old = old }
    self.live_changes[#self.live_changes + 1] = e
    added[#added + 1] = e
    if self:is_main() then
      log("set: %s=%s (was %s) at epoch %d, batch %d", c[1], tostring(c[2]), tostring(old), self.epoch + 1, e.batch)
    end
  end
  self:_apply_schedule_now()
  if self:is_main() then self:save_args() end
  return added
end

-- The learning rates (and warmup momentum) of the current step again, after a change of the schedule.
function Engine_Trainer:_apply_schedule_now()
  if not (self.optimizer and self.lf and self.epoch) then return end
  if self.ni and self.nw and self.ni <= self.nw then
    self:warmup(self.ni, self.nw, self.epoch)
  else
    self:scheduler_step(self.epoch)
  end
end

-- Under ranks=N, at every step boundary: rank 0's queued changes and any rank's stop reach every rank, so all
-- apply them at the same step.
-- The step boundary under DDP: one allreduce agrees on the strongest stop any rank was asked for and on whether
-- rank 0 queued live changes, which every rank then applies at this same step.
function Engine_Trainer:_sync_step()
  local pending = self._live_pending or {}
  local flags = self.dist:allreduce_max({ self.dist:stop_code(self.stop_reason), #pending })
  if flags[2] > 0 then
    local lines = {}
    for _, c in ipairs(pending) do
      lines[#lines + 1] = c[1] .. "\t" .. live.encode(c[2])
    end
    local text = self.dist:broadcast_string(table.concat(lines, "\n"))
    local list = {}
    for line in text:gmatch("[^\n]+") do
      local k, v = line:match("^([^\t]+)\t(.*)$")
      list[#list + 1] = { k, live.decode(v) }
    end
    self._live_pending = {}
    self:_apply_live(list)
  end
  local agreed = self.dist:stop_reason(flags[1])
  if agreed and agreed ~= self.stop_reason then self:request_stop(agreed) end
end

-- Serves `yolotrain attach` on the process that logs; a socket it may not use is a warning, not a failure.
function Engine_Trainer:_start_attach()
  if not (self:is_main() and yt.control) then return end
  local ok, a = pcall(function() return require("yolotrain.engine.attach").serve(self) end)
  if ok then
    self.attach = a
  else
    log("WARNING: attach: %s; training without the attach socket", tostring(a))
  end
end

function Engine_Trainer:_stop_attach(why)
  if self.attach then
    self.attach:close(why)
    self.attach = nil
  end
end

-- The dataset dictionary (data.yaml resolved). Detection_Trainer reads YOLO datasets.
function Engine_Trainer:get_dataset()
  error("Engine_Trainer:get_dataset must be provided by a task trainer (Detection_Trainer)", 2)
end

-- ---- model ----

-- Loads or builds self.model; returns the checkpoint table when model= is a yolotrain checkpoint.
function Engine_Trainer:setup_model()
  if type(self.model) == "table" and self.model.named_parameters then return nil end
  local cfg, weights, ckpt = self.model, nil, nil
  if type(cfg) == "string" and cfg:match("%.safetensors$") then
    ckpt = self:load_checkpoint(cfg)
    if not ckpt.meta.yaml then
      error(
        string.format(
          "model=%s is a plain state dict without an architecture: give model=<model.yaml> " .. "pretrained=%s",
          cfg,
          cfg
        ),
        0
      )
    end
    cfg = require("yolotrain.nn.tasks").yaml_from_json(ckpt.meta.yaml)
    weights = ckpt
  elseif type(cfg) == "string" and cfg:match("%.pt$") then -- Ultralytics weights: architecture + pretrained
    local pt = require("yolotrain.utils.pt")
    local _, rec = pt.load(cfg)
    cfg, weights = pt.model_cfg(rec), rec.state_dict
  elseif type(self.args.pretrained) == "string" then
    weights = self.args.pretrained
  end
  self.model = self:get_model(cfg, weights, self.rank == -1 and self.args.verbose)
  return ckpt
end

-- Ultralytics' name; calls build_model so overriding either works.
function Engine_Trainer:get_model(cfg, weights, verbose) return self:build_model(cfg, weights, verbose) end

function Engine_Trainer:build_model(cfg, weights, verbose)
  error("build_model(cfg, weights) must be provided by a task trainer (Detection_Trainer)", 2)
end

function Engine_Trainer:set_model_attributes() end

-- ---- data ----

function Engine_Trainer:get_dataloader(dataset_path, batch_size, rank, mode)
  error("get_dataloader must be provided by a task trainer (Detection_Trainer)", 2)
end

function Engine_Trainer:build_dataset(img_path, mode, batch)
  error("build_dataset must be provided by a task trainer (Detection_Trainer)", 2)
end

function Engine_Trainer:preprocess_batch(batch) return batch end

function Engine_Trainer:get_validator() error("get_validator must be provided by a task trainer (Detection_Trainer)", 2) end

function Engine_Trainer:label_loss_items(loss_items, prefix)
  prefix = prefix or "train"
  if loss_items == nil then return { prefix .. "/loss" } end
  return { [prefix .. "/loss"] = loss_items[1] }
end

function Engine_Trainer:progress_string() return "" end
function Engine_Trainer:plot_training_samples(batch, ni) end
function Engine_Trainer:plot_training_labels() end
function Engine_Trainer:plot_metrics() end
-- Registers a plot written to the run directory (Ultralytics' on_plot): self.plots[path] = {data, timestamp}.
function Engine_Trainer:on_plot(name, data) self.plots[name] = { data = data, timestamp = yt.machine.now() } end

-- ---- optimizer and schedule ----

-- Ultralytics' three parameter groups: 0 biases (no decay), 1 other weights (decay), 2 BatchNorm weights.
function Engine_Trainer:build_optimizer(model, name, lr, momentum, decay, iterations)
  name, lr, momentum, decay, iterations = name or "auto", lr or 0.001, momentum or 0.9, decay or 1e-5, iterations or 1e5
  local say = self:is_main() and log or function() end
  if name == "auto" then
    say(
      "optimizer: 'optimizer=auto' found, ignoring 'lr0=%s' and 'momentum=%s' and determining best "
        .. "'optimizer', 'lr0' and 'momentum' automatically... ",
      tostring(self.args.lr0),
      tostring(self.args.momentum)
    )
    local nc = model.nc or 10
    local lr_fit = math.floor(0.002 * 5 / (4 + nc) * 1e6 + 0.5) / 1e6
    if iterations > 10000 then
      name, lr, momentum = "SGD", 0.01, 0.9
    else
      name, lr, momentum = "AdamW", lr_fit, 0.9
    end
    self.args.warmup_bias_lr = 0.0
  end
  local modules = require("yolotrain.nn.modules")
  local g_bias, g_weight, g_bn = {}, {}, {}
  for _, e in ipairs(model:named_modules()) do
    local mname, m = e[1], e[2]
    for _, pname in ipairs(m._param_names) do
      local full = mname ~= "" and (mname .. "." .. pname) or pname
      local p = m._params[pname]
      if full:find("bias", 1, true) then
        g_bias[#g_bias + 1] = p
      elseif class.is_instance(m, modules.BatchNorm2d) then
        g_bn[#g_bn + 1] = p
      else
        g_weight[#g_weight + 1] = p
      end
    end
  end
  local kind
  if name == "Adam" or name == "AdamW" or name == "Adamax" or name == "NAdam" or name == "RAdam" then
    kind = (name == "AdamW") and "AdamW" or "Adam"
    if kind ~= name then say("WARNING: optimizer '%s' runs as Adam", name) end
  elseif name == "SGD" then
    kind = "SGD"
  else
    error(
      string.format(
        "Optimizer '%s' not found in list of available optimizers [Adam, Adamax, AdamW, NAdam, " .. "RAdam, SGD, auto].",
        tostring(name)
      ),
      0
    )
  end
  local function group(params, wd)
    if kind == "SGD" then
      return { params = params, lr = lr, momentum = momentum, weight_decay = wd, nesterov = true }
    end
    return { params = params, lr = lr, betas = { momentum, 0.999 }, eps = 1e-8, weight_decay = wd }
  end
  local optimizer = Optimizer(kind, { group(g_bias, 0.0), group(g_weight, decay), group(g_bn, 0.0) })
  say(
    "optimizer: %s(lr=%s, momentum=%s) with parameter groups %d weight(decay=0.0), %d weight(decay=%s), "
      .. "%d bias(decay=0.0)",
    kind,
    tostring(lr),
    tostring(momentum),
    #g_bn,
    #g_weight,
    tostring(decay),
    #g_bias
  )
  return optimizer
end

function Engine_Trainer:_setup_scheduler()
  local epochs, lrf = self.epochs, self.args.lrf
  if self.args.cos_lr then
    self.lf = function(x) return ((1 - math.cos(x * math.pi / epochs)) / 2) * (lrf - 1) + 1 end
  else
    self.lf = function(x) return math.max(1 - x / epochs, 0) * (1.0 - lrf) + lrf end
  end
end

-- The learning rate of every group at the start of an epoch (LambdaLR.step()).
function Engine_Trainer:scheduler_step(epoch)
  for j = 1, 3 do
    self.optimizer:set_group(j, { lr = self.optimizer.initial_lr[j] * self.lf(epoch) })
  end
end

local function interp(x, x0, x1, y0, y1)
  if x <= x0 then return y0 end
  if x >= x1 then return y1 end
  return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
end

-- Warmup of iteration ni (ni <= nw): accumulate ramps to nbs/batch; the bias lr falls from warmup_bias_lr, the
-- others rise from 0, towards lr0*lf(epoch); SGD's momentum rises from warmup_momentum.
function Engine_Trainer:warmup(ni, nw, epoch)
  local nbs_over_bs = self.args.nbs / self.batch_size
  self.accumulate = math.max(1, math.floor(utils.round_half_even(interp(ni, 0, nw, 1, nbs_over_bs))))
  for j = 1, 3 do
    local start = (j == 1) and self.args.warmup_bias_lr or 0.0
    local upd = { lr = interp(ni, 0, nw, start, self.optimizer.initial_lr[j] * self.lf(epoch)) }
    if self.optimizer.name == "SGD" then
      upd.momentum = interp(ni, 0, nw, self.args.warmup_momentum, self.args.momentum)
    end
    self.optimizer:set_group(j, upd)
  end
end

-- Clip the global gradient norm to 10, step, zero the gradients, update the EMA.
function Engine_Trainer:optimizer_step()
  local params = self.trainable_params
  self.grad_norm = yt.optim.clip_grad_norm(params, 10.0)
  self.optimizer:step()
  self:run_callbacks("optimizer_step")
  self:run_callbacks("on_before_zero_grad")
  self.optimizer:zero_grad()
  if self.ema then self.ema:update(self.model) end
  self:run_callbacks("on_params_update")
end

-- ---- setup ----

function Engine_Trainer:_setup_train()
  self:run_callbacks("on_pretrain_routine_start")
  local ckpt = self:setup_model()
  self:set_model_attributes()
  self.model.world_size = self.world_size
  torch_utils.freeze_layers(self.model, self.args.freeze, self:is_main() and function(s) log("%s", s) end or nil)
  self:_setup_amp()
  -- rank 0's initial weights everywhere; synchronised BatchNorm when sync_bn=true
  if self.dist then self.dist:setup_model(self) end
  self.trainable_params = {}
  for _, p in self.model:named_parameters() do
    if p.requires_grad then self.trainable_params[#self.trainable_params + 1] = p end
  end

  local gs = utils.max_stride(self.model)
  self.stride = gs
  self.args.imgsz = utils.check_imgsz(self.args.imgsz, gs, 1)

  local batch_size = self.batch_size // math.max(self.world_size, 1)
  self.train_loader = self:get_dataloader(self.trainset, batch_size, self.rank, "train")
  if self:is_main() then
    self.test_loader = self:get_dataloader(self.testset, batch_size * 2, -1, "val")
    self.validator = self:get_validator()
    local keys = {}
    for _, k in ipairs(self.validator.metrics.keys) do
      keys[#keys + 1] = k
    end
    for _, k in ipairs(self:label_loss_items(nil, "val")) do
      keys[#keys + 1] = k
    end
    self.metric_keys = keys
    self.metrics = {}
    for _, k in ipairs(keys) do
      self.metrics[k] = 0
    end
    self.ema = torch_utils.ModelEMA(self.model)
    if self.args.plots then self:plot_training_labels() end
  end
  self.accumulate = math.max(utils.round_half_even(self.args.nbs / self.batch_size), 1)
  local weight_decay = self.args.weight_decay * self.batch_size * self.accumulate / self.args.nbs
  local iterations = math.ceil(self:_dataset_size(self.train_loader) / math.max(self.batch_size, self.args.nbs))
    * self.epochs
  self.optimizer =
    self:build_optimizer(self.model, self.args.optimizer, self.args.lr0, self.args.momentum, weight_decay, iterations)
  self:_setup_scheduler()
  self.stopper = require("yolotrain.utils.early_stopping")(self.args.patience)
  self.stop = false
  self.stop_reason, self.stopped_at, self.last_saved = nil, nil, nil
  self:resume_training(ckpt)
  self:run_callbacks("on_pretrain_routine_end")
end

-- Mixed precision, where Ultralytics checks AMP: amp=true trains the convolutions in bf16 (float32 accumulation;
-- weights, BatchNorm, loss and optimizer in float32; ops/autocast.h) where the CPU has BF16, float32 elsewhere. Said
-- once, at the start. The process's previous setting comes back when the training ends (DDP_or_normally_train).
function Engine_Trainer:_setup_amp()
  local isa, bf16 = yt.sys.cpu_isa()
  self.amp = self.args.amp == true and bf16
  local before = yt.sys.set_autocast(self.amp)
  if self._autocast_before == nil then self._autocast_before = before end
  if not self:is_main() then return end
  if self.amp then
    log(
      "AMP: bf16 mixed precision (%s): convolutions in bf16 with float32 accumulation; weights, BatchNorm, loss "
        .. "and optimizer in float32 ✅",
      isa
    )
  elseif self.args.amp == true then
    log("AMP: this CPU has no BF16 instructions (oneDNN ISA %s): amp=true trains in float32", isa)
  else
    log("AMP: amp=false: training in float32")
  end
end

-- ---- the loop ----

-- What a loader returned by a recipe's get_dataloader needs: `#loader` batches and batches from `loader:iter()`,
-- or from calling the loader; `dataset_size()` and `set_epoch(e)` are used when present.
function Engine_Trainer:_iterate(loader)
  if loader.iter then return loader:iter() end
  return function() return loader() end
end

function Engine_Trainer:_dataset_size(loader)
  if loader.dataset_size then return loader:dataset_size() end
  return #loader * self.batch_size
end

-- At a step boundary: SIGTERM stops; Ctrl-C pauses into the REPL on a terminal (cont() resumes, stop() stops, as
-- a second Ctrl-C does) and stops otherwise.
function Engine_Trainer:_interactive_pause()
  if not (yt.sys and yt.sys.interrupted) then return end
  if yt.sys.terminated and yt.sys.terminated() then
    log("\nTerminated: saving last and stopping.")
    self:request_stop("terminate")
    return
  end
  if not yt.sys.interrupted() then return end
  if not yt.sys.isatty(0) then
    log("\nInterrupted: saving last and stopping.")
    self:request_stop("interrupt")
    return
  end
  log(
    "\nTraining paused at epoch %d. `trainer` is in scope: cont() resumes, stop() saves last and exits, "
      .. "help() lists the rest.",
    self.epoch + 1
  )
  local repl = require("yolotrain.repl")
  local env = setmetatable({
    trainer = self,
    yt = yt,
    help = function(obj) print(repl.help(obj)) end,
    save = function() return self:save_last() end,
  }, { __index = _G })
  local action = yt.sys.repl(env, "yolotrain (paused)")
  if action == "stop" then
    self:request_stop("user")
  elseif yt.sys.interrupt_count and yt.sys.interrupt_count() > 1 then
    self:request_stop("interrupt")
  end
end

-- Across ranks: every rank takes the stop any rank was asked for (a signal may reach one rank only).
-- Where a stopped training ended, for its last line: "at epoch 3/10, batch 17/128; last saved to ...".
function Engine_Trainer:_stopped_where()
  local at = self.stopped_at or { epoch = (self.epoch or 0) + 1, batch = 0, nb = 0 }
  -- (under DDP rank 0 saves, for all ranks)
  local saved = (self.last_saved or (not self:is_main() and self.args.save)) and ("last saved to " .. self.last)
    or "last not saved (save=false)"
  return string.format("at epoch %d/%d, batch %d/%d; %s", at.epoch, self.epochs, at.batch, at.nb, saved)
end

function Engine_Trainer:_do_train()
  self:_setup_train()
  local nb = #self.train_loader
  local nw = (self.args.warmup_epochs > 0) and math.max(utils.round_half_even(self.args.warmup_epochs * nb), 100) or -1
  self.nw = nw
  self.last_opt_step = self.last_opt_step or -1
  self.epoch_time = nil
  self.epoch_time_start = yt.machine.now()
  self.train_time_start = yt.machine.now()
  self:run_callbacks("on_train_start")
  if self:is_main() then
    log(
      "Image sizes %d train, %d val\nUsing %d dataloader workers\nLogging results to %s\n"
        .. "Starting training for %s...",
      self.args.imgsz,
      self.args.imgsz,
      self.train_loader.num_workers or self.args.workers,
      self.save_dir,
      self.args.time and (self.args.time .. " hours") or (self.epochs .. " epochs")
    )
  end
  if self.args.close_mosaic and self.args.close_mosaic > 0 then
    local base = (self.epochs - self.args.close_mosaic) * nb
    self.plot_idx[#self.plot_idx + 1] = base
    self.plot_idx[#self.plot_idx + 1] = base + 1
    self.plot_idx[#self.plot_idx + 1] = base + 2
  end
  local plot_at = {}
  for _, v in ipairs(self.plot_idx) do
    plot_at[v] = true
  end
  if yt.sys and yt.sys.install_interrupt_handler then yt.sys.install_interrupt_handler() end
  self:_start_attach()

  local epoch = self.start_epoch
  while true do
    self.epoch = epoch
    self:run_callbacks("on_train_epoch_start")
    self:scheduler_step(epoch)
    self.model:train()
    if self.train_loader.set_epoch then self.train_loader:set_epoch(epoch) end
    -- at or after (close_mosaic may have changed live): once
    local close_at = self:mosaic_close_epoch()
    if close_at and epoch >= close_at and not self.mosaic_closed then self:_close_dataloader_mosaic() end
    local pbar
    if self:is_main() then
      log("%s", self:progress_string())
      pbar = require("yolotrain.utils.progress")(nb)
    end
    self.tloss = nil
    local i = 0
    for batch in self:_iterate(self.train_loader) do
      self:run_callbacks("on_train_batch_start")
      local ni = i + nb * epoch
      if ni <= nw then self:warmup(ni, nw, epoch) end
      self.ni = ni
      self.batch_i = i + 1 -- the batch of this step, from 1: at the step boundary, the batches done this epoch
      yt.scope_begin()
      local ok, err = xpcall(function()
        batch = self:preprocess_batch(batch)
        local loss, loss_items = self.model:loss(batch)
        if self.world_size > 1 then loss = loss * self.world_size end
        local items = loss_items:tolist()
        if self.dist then
          -- each rank's items are normalised over the whole batch: their sum is what one process would log
          items = self.dist:mean_numbers(items)
          for k = 1, #items do
            items[k] = items[k] * self.world_size
          end
        end
        for k, v in ipairs(items) do
          if v ~= v or v == math.huge or v == -math.huge then
            error(
              string.format(
                "the loss is not finite (%s) at epoch %d, batch %d: stopping",
                tostring(v),
                epoch + 1,
                i + 1
              ),
              0
            )
          end
        end
        self.loss = loss:item()
        loss:backward()
        self.loss_items = items
        if self.tloss == nil then
          self.tloss = items
        else
          for k = 1, #items do
            self.tloss[k] = (self.tloss[k] * i + items[k]) / (i + 1)
          end
        end
        self.batch_instances = batch.cls:shape(1)
        self.batch_imgsz = batch.img:shape(4)
        if self.world_size > 1 and self.dist then self.dist:allreduce_grads(self) end
        if ni - self.last_opt_step >= self.accumulate then
          self:optimizer_step()
          self.last_opt_step = ni
          if self.args.time then
            self.stop = (yt.machine.now() - self.train_time_start) > self.args.time * 3600
            if self.dist then self.stop = self.dist:broadcast_stop(self.stop) end
          end
        end
        if self:is_main() then
          if pbar then pbar:update(self:progress_line(epoch)) end
          self:run_callbacks("on_batch_end")
          if self.args.plots and plot_at[ni] then self:plot_training_samples(batch, ni) end
        end
        self:run_callbacks("on_train_batch_end")
      end, errors.capture)
      yt.scope_end()
      if not ok then
        if pbar then pbar:close() end
        if err.at_batch == nil then
          err.at_epoch, err.at_batch = epoch + 1, i + 1
        end
        error(err, 0)
      end
      collectgarbage("step", 0)
      i = i + 1
      self:_interactive_pause()
      if self.attach then self.attach:poll() end
      if self.dist then self:_sync_step() end
      if self.stop then break end
    end
    self.stopped_at = { epoch = epoch + 1, batch = i, nb = nb }
    if pbar then pbar:close() end
    self.lr = {}
    for j = 1, 3 do
      self.lr["lr/pg" .. (j - 1)] = self.optimizer:get_group(j).lr
    end
    self:run_callbacks("on_train_epoch_end")
    if self:is_main() then
      local final_epoch = epoch + 1 >= self.epochs
      self.ema:update_attr(self.model, { "yaml", "nc", "args", "names", "stride" })
      if self.args.val or final_epoch or self.stopper.possible_stop or self.stop then
        self.metrics, self.fitness = self:validate()
      end
      local row = {}
      local items = self:label_loss_items(self.tloss, "train")
      for k, v in pairs(items) do
        row[k] = v
      end
      for k, v in pairs(self.metrics or {}) do
        row[k] = v
      end
      for k, v in pairs(self.lr) do
        row[k] = v
      end
      self:save_metrics(row)
      self.stop = self.stopper:check(epoch + 1, self.fitness) or final_epoch or self.stop
      if self.args.time then
        self.stop = self.stop or (yt.machine.now() - self.train_time_start) > self.args.time * 3600
      end
      if self.args.save or final_epoch then
        self:save_model()
        self.last_saved = true
        self:run_callbacks("on_model_save")
      end
    end
    local t = yt.machine.now()
    self.epoch_time = t - self.epoch_time_start
    self.epoch_time_start = t
    if self.args.time then
      local mean_epoch_time = (t - self.train_time_start) / (epoch - self.start_epoch + 1)
      self.epochs = math.ceil(self.args.time * 3600 / mean_epoch_time)
      -- every rank follows rank 0's clock, so all keep the same schedule
      if self.dist then self.epochs = math.tointeger(tonumber(self.dist:broadcast_string(tostring(self.epochs)))) end
      self.args.epochs = self.epochs
      self:_setup_scheduler()
      self.stop = self.stop or epoch >= self.epochs
    end
    self:run_callbacks("on_fit_epoch_end")
    -- a signal during validation or the save stops here, after the save
    if not self.stop_reason then self:_interactive_pause() end
    if self.dist then self:_sync_step() end
    if self.world_size > 1 and self.dist then self.stop = self.dist:broadcast_stop(self.stop) end
    if self.stop then break end
    epoch = epoch + 1
  end
  if yt.sys and yt.sys.restore_interrupt_handler then yt.sys.restore_interrupt_handler() end
  if self:is_main() then
    if not self.stop_reason then
      log(
        "\n%d epochs completed in %.3f hours.",
        epoch - self.start_epoch + 1,
        (yt.machine.now() - self.train_time_start) / 3600
      )
    end
    if not self.interrupted then self:final_eval() end
    if self.args.plots then self:plot_metrics() end
    self:run_callbacks("on_train_end")
  end
  self:run_callbacks("teardown")
end

-- Trains in this process, or across ranks when launched under MPI (see yolotrain.engine.distributed).
function Engine_Trainer:DDP_or_normally_train()
  local ranks = self.args.ranks or 1
  if ranks > 1 and self.world_size <= 1 then
    local dist = require("yolotrain.engine.distributed")
    return dist.relaunch(self, ranks)
  end
  if self.world_size > 1 and not self.dist then self.dist = require("yolotrain.engine.distributed").init(self) end
  local ok, err = xpcall(function() self:_do_train() end, errors.capture)
  if self._autocast_before ~= nil then
    yt.sys.set_autocast(self._autocast_before)
    self._autocast_before = nil
  end
  self:_stop_attach(ok and "the training ended" or "the training failed")
  if yt.sys and yt.sys.restore_interrupt_handler then yt.sys.restore_interrupt_handler() end
  if self.dist then self.dist:finish(ok, not ok and err.message or nil) end
  if not ok then error(self:_training_failure(err), 0) end
  -- stopped early by a signal or stop(): the executable prints the report's line and exits with its status
  if self.stop_reason then error(errors.stopped(self.stop_reason, self:_stopped_where()), 0) end
  return self.metrics
end

-- The error of a failed training, said once: the epoch and batch of the step that failed, and what became of last.
function Engine_Trainer:_training_failure(err)
  if err.at_batch and not err.message:find("at epoch %d+, batch %d+") then
    err.message = string.format("training failed at epoch %d, batch %d: %s", err.at_epoch, err.at_batch, err.message)
  end
  if (err.at_batch or err.callback_error or err.write_error) and not err.training_stopped then
    local saved = utils.exists(self.last) and string.format("the last checkpoint (%s) is intact", self.last)
      or "no checkpoint had been saved yet"
    err.message = err.message .. "\ntraining stopped; " .. saved
    err.training_stopped = true
  end
  return err
end

function Engine_Trainer:train() return self:DDP_or_normally_train() end

-- ---- validation, metrics ----

function Engine_Trainer:validate()
  local metrics = self.validator(self)
  local fitness = metrics.fitness
  metrics.fitness = nil
  if fitness == nil then fitness = -(self.loss or 0) end
  if self.best_fitness == nil or self.best_fitness < fitness then self.best_fitness = fitness end
  return metrics, fitness
end

-- results.csv with Ultralytics' columns (no space padding).
function Engine_Trainer:save_metrics(metrics)
  local keys = {}
  for _, k in ipairs(self:label_loss_items(nil, "train")) do
    keys[#keys + 1] = k
  end
  for _, k in ipairs(self.metric_keys or {}) do
    keys[#keys + 1] = k
  end
  for j = 0, 2 do
    keys[#keys + 1] = "lr/pg" .. j
  end
  local header = "epoch," .. table.concat(keys, ",") .. "\n"
  local vals = { tostring(self.epoch + 1) }
  for _, k in ipairs(keys) do
    local v = metrics[k]
    vals[#vals + 1] = v == nil and "" or string.format("%.5g", v)
  end
  -- rows of this epoch or later are from an attempt that a kill cut short before its checkpoint: a resumed run
  -- writes them again, once
  local kept = { header }
  for line in (utils.read_file(self.csv) or ""):gmatch("[^\n]+") do
    local e = tonumber(line:match("^%s*([^,]+),"))
    if e and e < self.epoch + 1 then kept[#kept + 1] = line .. "\n" end
  end
  utils.atomic_write(self.csv, table.concat(kept) .. table.concat(vals, ",") .. "\n")
end

function Engine_Trainer:read_results_csv() return utils.read_file(self.csv) or "" end

-- As Ultralytics: strips last and best to their F16 EMA weights, then validates best.
function Engine_Trainer:final_eval()
  for _, f in ipairs({ self.last, self.best }) do
    if utils.exists(f) then log("Optimizer stripped from %s, %.1fMB", f, checkpoint.strip(f) / 1e6) end
    if utils.exists(f) and f == self.best then
      log("\nValidating %s...", f)
      self.validator.args.plots = self.args.plots
      self.metrics = self.validator(nil, f)
      self.metrics.fitness = nil
      self:run_callbacks("on_fit_epoch_end")
    end
  end
end

-- ---- checkpoints ----

local function prefixed(prefix, list, out)
  for _, e in ipairs(list) do
    out[prefix .. e[1]] = e[2]
  end
end

-- Writes last (always), best (when this epoch is the best) and epochN (save_period) atomically.
function Engine_Trainer:save_model()
  self:_write_last()
  if self.best_fitness ~= nil and self.best_fitness == self.fitness then utils.atomic_copy(self.last, self.best) end
  -- as Ultralytics: epoch0, epochN, epoch2N, ... (0-based epoch numbers)
  if self.save_period > 0 and self.epoch % self.save_period == 0 then
    utils.atomic_copy(self.last, utils.join(self.wdir, string.format("epoch%d.safetensors", self.epoch)))
  end
end

-- save() of the REPLs: last.safetensors now, between two steps (as a stop would leave it: resuming from it goes
-- on with the next epoch). Returns its path.
function Engine_Trainer:save_last()
  if not (self.ema and self.optimizer and self.epoch) then
    error("save(): there is nothing to save before the first step (or on a rank other than 0)", 0)
  end
  self:_write_last()
  log("Saved %s at epoch %d, batch %d", self.last, self.epoch + 1, self.batch_i or 0)
  return self.last
end

function Engine_Trainer:_write_last()
  local tensors = {}
  prefixed("model.", self.ema.ema:state_dict_list(), tensors)
  prefixed("train_model.", self.model:state_dict_list(), tensors)
  for name, t in pairs(self.optimizer:state_tensors()) do
    tensors["optimizer." .. name] = t
  end
  -- gradients accumulated but not yet stepped carry over to the next epoch
  for name, p in self.model:named_parameters() do
    if p.grad then tensors["pending_grad." .. name] = p.grad end
  end
  local groups = {}
  for j = 1, 3 do
    local g = self.optimizer:get_group(j)
    groups[j] = { lr = g.lr, momentum = g.momentum, weight_decay = g.weight_decay }
  end
  local args = {}
  for k, v in pairs(self.args) do
    if v ~= cfgmod.NONE then args[k] = v end
  end
  local meta = {
    format = checkpoint.FORMAT,
    epoch = tostring(self.epoch),
    epochs = tostring(self.epochs),
    best_fitness = tostring(self.best_fitness or ""),
    fitness = tostring(self.fitness or ""),
    updates = tostring(self.ema.updates),
    last_opt_step = tostring(self.last_opt_step),
    accumulate = tostring(self.accumulate),
    optimizer = self.optimizer.name,
    optimizer_groups = cjson.encode(groups),
    initial_lr = cjson.encode(self.optimizer.initial_lr),
    train_args = cjson.encode(args),
    train_metrics = cjson.encode(self.metrics or {}),
    yaml = cjson.encode(self.model.yaml or {}),
    names = cjson.encode(self:names_list()),
    nc = tostring(self.model.nc or ""),
    rng_state = tostring(yt.get_rng_state and yt.get_rng_state() or ""),
    live_changes = live.encode_history(self.live_changes),
    date = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    version = yt.version,
  }
  local ok, err = pcall(yt.io.save_safetensors, self.last, tensors, meta)
  if not ok then utils.write_error(self.last, err) end
end

function Engine_Trainer:names_list()
  local names = {}
  local src = (self.data and self.data.names) or self.model.names or {}
  local nc = self.model.nc or (self.data and self.data.nc) or 0
  for i = 0, nc - 1 do
    names[i + 1] = src[i] or tostring(i)
  end
  return names
end

-- Loads a checkpoint: { tensors = name -> tensor, meta = metadata }.
function Engine_Trainer:load_checkpoint(path)
  local tensors, meta = yt.io.load_safetensors(path)
  return { tensors = tensors, meta = meta or {}, path = path }
end

local strip = checkpoint.with_prefix

-- Finds the newest last.safetensors under the project folder.
local function newest_last(root)
  local best, best_mtime
  local function walk(dir, depth)
    if depth > 4 then return end
    for _, name in ipairs(yt.sys.listdir(dir) or {}) do
      local p = utils.join(dir, name)
      local st = yt.sys.stat(p)
      if st and st.is_dir then
        walk(p, depth + 1)
      elseif st and name == "last.safetensors" and (not best_mtime or st.mtime > best_mtime) then
        best, best_mtime = p, st.mtime
      end
    end
  end
  if utils.is_dir(root) then walk(root, 0) end
  return best
end

-- Where a resumed run writes: the run directory the checkpoint lies in (its save_dir must say so), or, for a
-- checkpoint from elsewhere, nil when project=/name= choose a new one; otherwise an error naming both places.
local function resume_save_dir(path, ckpt_args, overrides)
  local here = yt.sys.realpath(utils.dirname(utils.dirname(path)))
  local said = type(ckpt_args.save_dir) == "string" and yt.sys.realpath(ckpt_args.save_dir) or nil
  if said and said == here then return ckpt_args.save_dir end
  if overrides.project ~= nil or overrides.name ~= nil then return nil end
  error(
    string.format(
      "resume=%s: the checkpoint names its run directory '%s', but it lies in '%s'. Give "
        .. "project= and/or name= to choose where the resumed run writes.",
      path,
      tostring(ckpt_args.save_dir),
      tostring(here)
    ),
    0
  )
end

-- resume=true (newest last under the project) or resume=<path>: the run's own arguments come back from the
-- checkpoint; imgsz, batch, workers, ranks, device and tensorboard may be overridden.
function Engine_Trainer:check_resume(overrides)
  local resume = self.args.resume
  if not resume then return end
  local path = resume
  if resume == true then
    local project = utils.project_dir(self.args)
    path = newest_last(project)
    if not path then error("resume=true: no last.safetensors found under " .. project .. " to resume from", 0) end
  end
  if type(path) ~= "string" or not utils.exists(path) then
    error(string.format("resume=%s: checkpoint not found", tostring(resume)), 0)
  end
  local meta = yt.io.load_safetensors_metadata(path)
  if not meta or meta.format ~= checkpoint.FORMAT then
    error(string.format("resume=%s: not a yolotrain training checkpoint", path), 0)
  end
  local ckpt_args = checkpoint.train_args(path, meta)
  local done = checkpoint.counter(path, meta, "epoch", -1) + 1
  local total = checkpoint.counter(path, meta, "epochs", 1, ckpt_args.epochs)
  if checkpoint.is_stripped(meta) or done >= total then
    local note = ""
    if not checkpoint.is_stripped(meta) and path:match("last%.safetensors$") then
      -- the run ended before its final strip (killed in it): finish that step, which needs no training
      yt.sys.remove_stale_temps(utils.dirname(path))
      for _, f in ipairs({ path, utils.join(utils.dirname(path), "best.safetensors") }) do
        if utils.exists(f) then checkpoint.strip(f) end
      end
      note = "\nIts final step had been interrupted: last and best are now stripped to their F16 EMA weights."
    end
    error(
      string.format(
        "%s training to %d epochs is finished, nothing to resume.%s\nStart a new training "
          .. "without resuming, i.e. 'yolotrain train model=%s'",
        path,
        total,
        note,
        path
      ),
      0
    )
  end
  local args = cfgmod.get_cfg({})
  for k, v in pairs(ckpt_args) do
    if cfgmod.defaults.kinds[k] then
      -- JSON numbers come back as floats: integers stay integers (epochs=3, not 3.0)
      local d = cfgmod.defaults.values[k]
      if type(v) == "number" and (math.type(d) == "integer" or type(d) ~= "number") then v = math.tointeger(v) or v end
      args[k] = v
    end
  end
  args.save_dir = resume_save_dir(path, ckpt_args, overrides)
  if not args.save_dir then
    for _, k in ipairs({ "project", "name" }) do
      args[k] = overrides[k]
    end
  end
  for _, k in ipairs({ "imgsz", "batch", "workers", "ranks", "device", "tensorboard" }) do
    if overrides[k] ~= nil then args[k] = overrides[k] end
  end
  args.resume = true
  args.model = path
  -- the live changes replay in resume_training: the training is set up with the values it started with
  local changes = live.decode_history(meta.live_changes, path)
  for i = #changes, 1, -1 do
    args[changes[i].key] = changes[i].old
  end
  self.args = args
  self.resume_path = path
  self.resume_live_changes = changes
end

-- Restores optimizer, EMA, epoch, best fitness and the raw training weights from a checkpoint.
function Engine_Trainer:resume_training(ckpt)
  if not ckpt or not self.args.resume then return end
  local meta, tensors = ckpt.meta, ckpt.tensors
  -- the live changes of the run so far, in their order, as they were applied (the groups are restored below)
  for _, e in ipairs(self.resume_live_changes or {}) do
    live.apply(self, e.key, e.value)
    self.live_changes[#self.live_changes + 1] = e
  end
  if #self.live_changes > 0 and self:is_main() then self:save_args() end
  local epoch = checkpoint.counter(ckpt.path, meta, "epoch", -1)
  local start_epoch = epoch + 1
  if start_epoch >= self.epochs then
    error(
      string.format(
        "%s training to %d epochs is finished, nothing to resume.\nStart a new training "
          .. "without resuming, i.e. 'yolotrain train model=%s'",
        ckpt.path,
        self.epochs,
        ckpt.path
      ),
      0
    )
  end
  log("Resuming training %s from epoch %d to %d total epochs", ckpt.path, start_epoch + 1, self.epochs)
  local train_sd = strip("train_model.", tensors)
  if next(train_sd) then self.model:load_state_dict(train_sd) end
  if self.ema then
    self.ema.ema:load_state_dict(strip("model.", tensors))
    self.ema.updates = checkpoint.counter(ckpt.path, meta, "updates", 0, 0)
  end
  self.optimizer:load_state_tensors(strip("optimizer.", tensors))
  for j, g in ipairs(checkpoint.optimizer_groups(ckpt.path, meta, self.optimizer:n_groups())) do
    self.optimizer:set_group(j, g)
  end
  local grads = strip("pending_grad.", tensors)
  for name, p in self.model:named_parameters() do
    if grads[name] then p.grad = grads[name] end
  end
  self.best_fitness = tonumber(meta.best_fitness)
  self.last_opt_step = tonumber(meta.last_opt_step) or -1
  self.accumulate = tonumber(meta.accumulate) or self.accumulate
  if meta.rng_state and meta.rng_state ~= "" and yt.set_rng_state then yt.set_rng_state(meta.rng_state) end
  self.start_epoch = start_epoch
  -- closed only if the uninterrupted run would have closed it by now (Ultralytics also closes it when
  -- close_mosaic >= epochs, which its uninterrupted run never does: a resumed run then trains differently)
  local close_at = self:mosaic_close_epoch()
  if close_at and start_epoch > close_at then self:_close_dataloader_mosaic() end
end

-- The epoch (0-based) from which mosaic is off, or nil when it stays on: the last close_mosaic epochs, and never
-- when close_mosaic is 0 or not less than epochs (as an uninterrupted Ultralytics run).
function Engine_Trainer:mosaic_close_epoch()
  local n = self.args.close_mosaic or 0
  if n <= 0 or n > self.epochs then return nil end
  return self.epochs - n
end

function Engine_Trainer:_close_dataloader_mosaic()
  self.mosaic_closed = true
  if self.train_loader and self.train_loader.close_mosaic then
    if self:is_main() then log("Closing dataloader mosaic") end
    self.train_loader:close_mosaic()
  end
end

function Engine_Trainer:progress_line(epoch) return "" end

return Engine_Trainer
