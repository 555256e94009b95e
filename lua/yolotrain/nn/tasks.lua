-- Detection_Model: a YOLOv8 detector built from an Ultralytics model YAML.
--
--   local m = tasks.Detection_Model("yolov8n.yaml", { nc = 80 })
--   m:train(); local outs = m(images)          -- 3 raw levels (B, 4*16+nc, H, W)
--   m:eval();  local y, raw = m(images)         -- decoded (B, 4+nc, A) and the raw levels
local yt = require("yolotrain.core")
local Module = require("yolotrain.nn.module")
local modules = require("yolotrain.nn.modules")
local utils = require("yolotrain.utils")
local checkpoint = require("yolotrain.engine.checkpoint")

local tasks = {}

local function script_dir()
  local src = debug.getinfo(1, "S").source:sub(2)
  return src:match("(.*/)") or "./"
end

local MODELS_DIR = script_dir() .. "../cfg/models/"

local function file_exists(path)
  local f = io.open(path, "r")
  if f then
    f:close()
    return true
  end
  return false
end

-- Python's round(): halves go to the even neighbour.
local round_half_even = utils.round_half_even
tasks.round_half_even = round_half_even

local function make_divisible(x, divisor) return math.ceil(x / divisor) * divisor end

-- Python repr of YAML-ish argument lists, for the layer table: [3, 16, 3, 2], [None, 2, 'nearest'], True.
local NONE = setmetatable({}, { __tostring = function() return "None" end })
tasks.NONE = NONE
local function pyrepr(v)
  if v == NONE or v == nil then return "None" end
  if v == true then return "True" end
  if v == false then return "False" end
  if type(v) == "string" then
    -- Python's repr: single quotes unless the text has one and no double quote; escapes for the rest
    local q = (v:find("'", 1, true) and not v:find('"', 1, true)) and '"' or "'"
    local body = v:gsub("[%c\\" .. q .. "]", function(c)
      if c == "\\" or c == q then return "\\" .. c end
      if c == "\n" then
        return "\\n"
      elseif c == "\t" then
        return "\\t"
      elseif c == "\r" then
        return "\\r"
      end
      return string.format("\\x%02x", c:byte())
    end)
    return q .. body .. q
  end
  if type(v) == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%.1f", v) end
    return string.format("%.17g", v):gsub("0+$", "")
  end
  if type(v) == "table" then
    local parts = {}
    for i = 1, #v do
      parts[i] = pyrepr(v[i])
    end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  return tostring(v)
end
tasks.pyrepr = pyrepr

-- Resolves "yolov8n.yaml" to the shipped yolov8.yaml at scale n (as Ultralytics does), or an explicit path.
-- Returns the parsed YAML table with `scale` and `yaml_file` set.
function tasks.yaml_model_load(cfg)
  if type(cfg) == "table" then return cfg end
  local path = tostring(cfg)
  local stem = path:match("([^/]+)%.ya?ml$")
  if not stem then error(string.format("model config '%s' is not a .yaml file", path), 0) end
  local scale = stem:match("^yolov%d+([nslmx])")
  local unified = stem:gsub("^(yolov%d+)[nslmx](.*)$", "%1%2")
  local candidates = { path }
  if not path:find("/") then
    local family = stem:match("^yolo(v%d+)") or ""
    table.insert(candidates, MODELS_DIR .. family .. "/" .. stem .. ".yaml")
    table.insert(candidates, MODELS_DIR .. family .. "/" .. unified .. ".yaml")
  else
    table.insert(candidates, (path:gsub("[^/]+$", unified .. ".yaml")))
  end
  for _, p in ipairs(candidates) do
    if file_exists(p) then
      local ok, d, key_order = pcall(yt.io.load_yaml, p, { key_order = true })
      if not ok then error((tostring(d):gsub("^[^\n]-:%d+: (" .. p:gsub("%p", "%%%0") .. ")", "%1")), 0) end
      if type(d) ~= "table" then error(string.format("%s: a model YAML must be a mapping", p), 2) end
      d.yaml_file = p
      d.scale = d.scale or scale
      if not d.scale and type(d.scales) == "table" and key_order[d.scales] then
        -- as Ultralytics: the first scale the file lists (not the alphabetically first, 'l')
        d.scale = key_order[d.scales][1]
        io.stderr:write(string.format("WARNING: no model scale given; assuming scale='%s'.\n", tostring(d.scale)))
      end
      return d
    end
  end
  error(string.format("model config '%s' not found (looked in: %s)", path, table.concat(candidates, ", ")), 0)
end

local function arg_value(a, nc, where)
  if a == yt.io.null then return NONE end
  if type(a) ~= "string" then return a end
  if a == "nc" then return nc end
  if a == "None" then return NONE end
  if a == "True" then return true end
  if a == "False" then return false end
  return a
end

local function layer_error(d, i, section, msg)
  error(string.format("%s: %s layer %d: %s", d.yaml_file or "model YAML", section, i, msg), 0)
end

-- Builds the layers from the YAML dict. Returns a Sequential (layers carry i, f, type, np, n, args_repr)
-- and the sorted save list.
function tasks.parse_model(d, ch, verbose)
  local nc = d.nc
  local depth, width, max_channels = d.depth_multiple or 1.0, d.width_multiple or 1.0, math.huge
  if d.scales then
    local scale = d.scale
    if not scale then
      -- a table built in Lua has no key order: the conventional order of scale names, then alphabetical
      for _, k in ipairs({ "n", "s", "m", "l", "x" }) do
        if d.scales[k] then
          scale = k
          break
        end
      end
      if not scale then
        for k in pairs(d.scales) do
          if not scale or k < scale then scale = k end
        end
      end
      io.stderr:write(string.format("WARNING: no model scale given; assuming scale='%s'.\n", scale))
    end
    local s = d.scales[scale]
    if type(s) ~= "table" or #s ~= 3 then
      error(string.format("%s: scale '%s' not found in scales", d.yaml_file or "model YAML", tostring(scale)), 0)
    end
    depth, width, max_channels = s[1], s[2], s[3]
  end
  local layers = modules.Sequential()
  local chs = { ch }
  local save = {}
  local rows = {}
  local all = {}
  for _, section in ipairs({ "backbone", "head" }) do
    if type(d[section]) ~= "table" then
      error(string.format("%s: missing '%s' list", d.yaml_file or "model YAML", section), 0)
    end
    for _, row in ipairs(d[section]) do
      all[#all + 1] = { row = row, section = section }
    end
  end
  for idx, entry in ipairs(all) do
    local i = idx - 1
    local row, section = entry.row, entry.section
    if type(row) ~= "table" or #row ~= 4 then
      layer_error(d, i, section, "each row must be [from, repeats, module, args]")
    end
    local f, n, mname, args = row[1], row[2], row[3], row[4]
    if type(mname) ~= "string" then layer_error(d, i, section, "module name must be a string") end
    local short = mname:gsub("^torch%.nn%.", ""):gsub("^nn%.", "")
    local reg = modules.registry[short]
    if not reg then
      local known = {}
      for k in pairs(modules.registry) do
        known[#known + 1] = k
      end
      table.sort(known)
      layer_error(d, i, section, string.format("unknown module '%s' (known: %s)", mname, table.concat(known, ", ")))
    end
    if type(args) ~= "table" then layer_error(d, i, section, "args must be a list") end
    local a = {}
    for j = 1, #args do
      a[j] = arg_value(args[j], nc)
    end
    if type(n) ~= "number" then layer_error(d, i, section, "repeats must be a number") end
    local n_ = n
    if n > 1 then n_ = math.max(round_half_even(n * depth), 1) end
    local n_printed = n_ -- the scaled repeats, printed even when they become a module argument
    local function ch_of(k)
      if type(k) ~= "number" then layer_error(d, i, section, "'from' must be an integer or a list of integers") end
      local c = (k == -1) and chs[#chs] or chs[k + 1]
      if not c then layer_error(d, i, section, string.format("'from' index %d refers to no earlier layer", k)) end
      return c
    end
    local c1, c2
    local kind = reg.spec.kind
    if reg.spec.channels then
      c1 = (type(f) == "table")
          and (function()
            local t = {}
            for q, k in ipairs(f) do
              t[q] = ch_of(k)
            end
            return t
          end)()
        or ch_of(f)
      c2 = reg.spec.channels(c1, a)
    elseif kind == "conv" or kind == "repeat" then
      c1 = ch_of(f)
      c2 = a[1]
      if c2 ~= nc then c2 = make_divisible(math.min(c2, max_channels) * width, 8) end
      local newargs = { c1, c2 }
      for j = 2, #a do
        newargs[#newargs + 1] = a[j]
      end
      a = newargs
      if kind == "repeat" then
        table.insert(a, 3, n_)
        n_ = 1
      end
    elseif kind == "concat" then
      c2 = 0
      for _, k in ipairs(f) do
        c2 = c2 + ch_of(k)
      end
    elseif kind == "detect" then
      local list = {}
      for q, k in ipairs(f) do
        list[q] = ch_of(k)
      end
      a[#a + 1] = list
    else
      c2 = ch_of(type(f) == "table" and f[1] or f)
    end
    local ctor_args = {}
    for j = 1, #a do
      if a[j] ~= NONE then ctor_args[j] = a[j] end
    end
    local m
    local ok, err = pcall(function()
      if n_ > 1 then
        m = modules.Sequential()
        for _ = 1, n_ do
          m:append(reg.cls(table.unpack(ctor_args, 1, #a)))
        end
      else
        m = reg.cls(table.unpack(ctor_args, 1, #a))
      end
    end)
    if not ok then layer_error(d, i, section, string.format("%s%s: %s", short, pyrepr(a), tostring(err))) end
    m.i, m.f, m.type = i, f, short
    m.np = m:num_params()
    m.n = n_printed
    m.args_repr = pyrepr(a)
    local froms = type(f) == "table" and f or { f }
    for _, k in ipairs(froms) do
      if k ~= -1 then save[#save + 1] = k % i end
    end
    layers:append(m)
    if i == 0 then chs = {} end
    if kind == "detect" then c2 = nil end
    chs[#chs + 1] = c2
    rows[#rows + 1] = string.format(
      "%3d%20s%3d%10d  %-45s%-30s",
      i,
      pyrepr(f),
      n_printed,
      m.np,
      modules[short] == reg.cls and ("yolotrain.nn.modules." .. short) or m:class_name(),
      m.args_repr
    )
  end
  table.sort(save)
  local uniq = {}
  for _, v in ipairs(save) do
    if uniq[#uniq] ~= v then uniq[#uniq + 1] = v end
  end
  if verbose then
    print(string.format("\n%3s%20s%3s%10s  %-45s%-30s", "", "from", "n", "params", "module", "arguments"))
    for _, r in ipairs(rows) do
      print(r)
    end
  end
  return layers, uniq, rows
end

-- ---- Detection_Model ----

local Detection_Model = Module:extend("Detection_Model")
tasks.Detection_Model = Detection_Model
tasks.DetectionModel = Detection_Model

-- Detection_Model(cfg, { nc = , ch = 3, verbose = false })
function Detection_Model:init(cfg, opts)
  Module.init(self)
  opts = opts or {}
  if type(opts) ~= "table" then error("Detection_Model(cfg, opts): opts must be a table like { nc = 80 }", 2) end
  local ok, d = pcall(tasks.yaml_model_load, cfg or "yolov8n.yaml")
  if not ok then error(d, 0) end
  self.yaml = d
  local ch = opts.ch or d.ch or 3
  d.ch = ch
  if opts.nc and opts.nc ~= d.nc then
    if opts.verbose then print(string.format("Overriding model.yaml nc=%s with nc=%d", tostring(d.nc), opts.nc)) end
    d.nc = opts.nc
  end
  if type(d.nc) ~= "number" then error("model YAML: 'nc' (number of classes) must be a number", 2) end
  local layers, save, rows = tasks.parse_model(d, ch, opts.verbose)
  self:add_module("model", layers)
  self.save, self.layer_rows = save, rows
  self.names = opts.names or {}
  if not opts.names then
    for i = 0, d.nc - 1 do
      self.names[i] = tostring(i)
    end
  end
  self.nc = d.nc
  self.scale = d.scale
  self.yaml_file = d.yaml_file
  local head = layers.items[#layers.items]
  if modules.registry.Detect and head:is_instance(modules.Detect) then
    -- stride probe as Ultralytics does: a train-mode forward of a 256x256 zero image with BatchNorm's default
    -- momentum (0.1), before initialising momentum/eps; it leaves running_var at 0.9 and counts one batch
    local bns = {}
    for m in self:modules() do
      if m:is_instance(modules.BatchNorm2d) then bns[#bns + 1] = m end
    end
    for _, bn in ipairs(bns) do
      bn.momentum = 0.1
    end
    local s = 256
    local prev = yt.set_grad_enabled(false)
    self:train()
    yt.scope_begin()
    local okf, outs = pcall(function() return self:forward(yt.zeros({ 1, ch, s, s })) end)
    local strides = {}
    if okf then
      for i, o in ipairs(outs) do
        strides[i] = s / o:shape(3)
      end
    end
    yt.scope_end()
    yt.set_grad_enabled(prev)
    if not okf then error(outs, 2) end
    for _, bn in ipairs(bns) do
      bn.momentum = 0.03
    end
    head.stride = strides
    self.stride = strides
    head:bias_init()
  else
    self.stride = { 32 }
  end
  if opts.verbose then
    local _, _, _, _, line = self:info(false)
    print(line)
  end
end

function Detection_Model:forward(x, ...)
  if type(x) == "table" and not yt.is_tensor(x) then
    -- a batch dict: the loss, as model(batch) does in Ultralytics
    return self:loss(x, ...)
  end
  return self:predict(x)
end

-- The input of layer m: the previous output x, or what its `from` names among the kept outputs y (-1: x).
local function layer_input(m, x, y)
  if m.f == -1 then return x end
  if type(m.f) ~= "table" then return y[m.f] end
  local xs = {}
  for q, j in ipairs(m.f) do
    xs[q] = (j == -1) and x or y[j]
  end
  return xs
end

-- The layers (by index; -1: the model's input) whose outputs layer m reads: its `from` routes, -1 the layer before.
local function sources(m)
  local froms = type(m.f) == "table" and m.f or { m.f }
  local src = {}
  for q, k in ipairs(froms) do
    src[q] = k == -1 and m.i - 1 or k
  end
  return src
end

local function holds(v, t) -- v is t, or a list holding t
  if v == t then return true end
  if type(v) ~= "table" or yt.is_tensor(v) then return false end
  for _, u in ipairs(v) do
    if u == t then return true end
  end
  return false
end

-- Runs the layers, keeping the outputs that later layers read, each until its last reader has run: then it is
-- freed (t:free(): its storage goes unless the autograd tape saved it for backward), not at the step's end. The
-- count is per tensor (a layer may return its input), and the model's input and what predict returns are never
-- freed.
function Detection_Model:predict(x)
  local layers = self.model.items
  local reads, srcs = {}, {} -- reads[i]: the layers still to read the output of layer i; srcs[n]: layer n's sources
  for n, m in ipairs(layers) do
    srcs[n] = sources(m)
    for _, i in ipairs(srcs[n]) do
      reads[i] = (reads[i] or 0) + 1
    end
  end
  local input = x
  local y, left = { [-1] = x }, {} -- the outputs still to be read; left[t]: the reads still to come of tensor t
  for n, m in ipairs(layers) do
    local a, b = m(layer_input(m, x, y))
    x = a
    local last = b ~= nil or n == #layers
    if reads[m.i] then
      y[m.i] = a
      if yt.is_tensor(a) then left[a] = (left[a] or 0) + reads[m.i] end
    end
    for _, i in ipairs(srcs[n]) do
      local t = y[i]
      reads[i] = reads[i] - 1
      if reads[i] == 0 then y[i] = nil end
      if left[t] then
        left[t] = left[t] - 1
        if left[t] == 0 then
          left[t] = nil
          if t ~= input and not (last and (holds(a, t) or holds(b, t))) then t:free() end
        end
      end
    end
    if last then return a, b end
  end
  return x
end

-- predict's routing as an ONNX graph (yolotrain.utils.onnx): each layer emits its nodes under "model.<i>".
function Detection_Model:onnx(g, x)
  local y, input = {}, x
  for _, m in ipairs(self.model.items) do
    x = g:call(m, "model." .. m.i, layer_input(m, x, y))
    y[m.i] = x
  end
  assert(x ~= input, "a model without layers")
  return x
end

-- Prints the layer table and the summary line; returns layers, parameters, gradients, GFLOPs.
function Detection_Model:info(verbose, imgsz)
  if verbose == nil then verbose = true end
  imgsz = imgsz or 640
  local nlayers = #self:named_modules()
  local nparams, ngrads = self:num_params()
  local gflops = self:flops(imgsz)
  local fused = self.fused and " (fused)" or ""
  local name = "YOLOv8" .. (self.scale or "")
  local stem = (self.yaml_file or ""):match("([^/]+)%.ya?ml$")
  if stem then
    name = stem:gsub("^yolov(%d+)", "YOLOv%1")
    if self.scale and not name:match("[nslmx]$") then name = name .. self.scale end
  end
  local commas = utils.commas
  local line = string.format(
    "%s summary%s: %d layers, %s parameters, %s gradients, %.1f GFLOPs",
    name,
    fused,
    nlayers,
    commas(nparams),
    commas(ngrads),
    gflops
  )
  if verbose then
    if not self.fused then
      print(string.format("\n%3s%20s%3s%10s  %-45s%-30s", "", "from", "n", "params", "module", "arguments"))
      for _, r in ipairs(self.layer_rows) do
        print(r)
      end
    end
    print(line)
  end
  return nlayers, nparams, ngrads, gflops, line
end

-- GFLOPs at imgsz x imgsz, counted like thop on a 32x32 eval-mode forward, scaled by (imgsz/32)^2.
function Detection_Model:flops(imgsz)
  imgsz = imgsz or 640
  local counter = modules.flop_counter
  local was_training = self.training
  self:eval()
  local prev = yt.set_grad_enabled(false)
  counter.active, counter.macs, counter.include_bn = true, 0, true
  yt.scope_begin()
  local ok, err = pcall(function() self:predict(yt.zeros({ 1, self.yaml.ch or 3, 32, 32 })) end)
  yt.scope_end()
  counter.active = false
  yt.set_grad_enabled(prev)
  self:train(was_training)
  if not ok then error(err, 2) end
  return 2 * counter.macs / 1e9 * (imgsz / 32) ^ 2
end

-- Folds every Conv's BatchNorm into its convolution (for inference), as model.fuse() does.
function Detection_Model:fuse(verbose)
  if self.fused then return self end
  for m in self:modules() do
    if m:is_instance(modules.Conv) then m:fuse() end
  end
  -- every convolution, its BatchNorm folded in or without one (Detect's last ones), may now run as a prepared
  -- inference plan (nn/modules.lua, "the fused inference path")
  for m in self:modules() do
    if m:is_instance(modules.Conv2d) then m.fused = true end
  end
  self.fused = true
  if verbose then self:info(true) end
  return self
end

-- The model YAML dict stored (as JSON) in a checkpoint's metadata; JSON has no integers, so whole numbers come
-- back as integers (the layer table shows [3, 16, 3, 2], not [3.0, 16.0, ...]).
function tasks.yaml_from_json(text)
  local cjson = require("cjson")
  local function fix(v)
    if type(v) == "number" then return math.tointeger(v) or v end
    if type(v) == "table" then
      local out = {}
      for k, x in pairs(v) do
        out[k] = fix(x)
      end
      return out
    end
    if v == cjson.null then return "None" end
    return v
  end
  return fix(cjson.decode(text))
end

-- Builds the model a yolotrain checkpoint describes (architecture and class names are in its metadata) and
-- loads its EMA weights strictly. Returns the model and the metadata. An Ultralytics .pt works the same way
-- (yolotrain.utils.pt); its metadata is then the checkpoint dict.
function tasks.load_checkpoint_model(path, opts)
  local cjson = require("cjson")
  if path:match("%.pt$") then return require("yolotrain.utils.pt").load_model(path, opts) end
  local tensors, meta = yt.io.load_safetensors(path)
  meta = meta or {}
  if not meta.yaml then
    error(
      string.format(
        "%s has no model architecture in its metadata (a plain state dict?): give "
          .. "model=<model.yaml> pretrained=%s",
        path,
        path
      ),
      2
    )
  end
  local d = tasks.yaml_from_json(meta.yaml)
  local names = {}
  if meta.names then
    for i, n in ipairs(cjson.decode(meta.names)) do
      names[i - 1] = n
    end
  end
  local model = Detection_Model(
    d,
    { nc = tonumber(meta.nc) or d.nc, names = next(names) and names or nil, verbose = opts and opts.verbose }
  )
  model:load_state_dict(checkpoint.model_state(tensors))
  return model, meta
end

-- Loads a checkpoint path or a state-dict table, copying the tensors whose names and shapes match.
-- Returns (copied, total) and prints "Transferred x/y items from pretrained weights" when verbose.
function Detection_Model:load(weights, verbose)
  local sd, meta = weights, nil
  if type(weights) == "string" and weights:match("%.pt$") then
    sd = require("yolotrain.utils.pt").state_dict(weights)
  elseif type(weights) == "string" then
    sd, meta = yt.io.load_safetensors(weights)
  end
  if type(sd) ~= "table" then error("load: expected a path or a table of tensors", 2) end
  if sd.tensors and sd.meta then
    sd, meta = sd.tensors, sd.meta
  end -- a loaded checkpoint { tensors =, meta = }
  -- a yolotrain checkpoint: its model.* entries are the (EMA) model's state dict
  if checkpoint.is_checkpoint(sd, meta) then sd = checkpoint.model_state(sd) end
  local report = self:load_state_dict(sd, { strict = false })
  if verbose ~= false then
    print(string.format("Transferred %d/%d items from pretrained weights", report.loaded, report.total))
  end
  return report.loaded, report.total
end

-- The criterion (yolotrain.loss's v8 detection loss); Ultralytics' name init_criterion is an alias.
function Detection_Model:build_loss_class()
  local loss = require("yolotrain.utils.loss")
  return loss.v8DetectionLoss(self)
end

function Detection_Model:init_criterion() return self:build_loss_class() end

-- loss, loss_items = model:loss(batch[, preds]); builds the criterion lazily. Predictions it makes itself are freed
-- once the criterion has returned (the loss saved what its backward reads); those given belong to the caller.
function Detection_Model:loss(batch, preds)
  if not self.criterion then self.criterion = self:init_criterion() end
  if preds ~= nil then return self.criterion(preds, batch) end
  preds = self:predict(batch.img)
  local r = table.pack(self.criterion(preds, batch))
  if type(preds) == "table" and not yt.is_tensor(preds) then
    for _, p in ipairs(preds) do
      local returned = false
      for k = 1, r.n do
        returned = returned or holds(r[k], p)
      end
      if yt.is_tensor(p) and not returned then p:free() end
    end
  end
  return table.unpack(r, 1, r.n)
end

return tasks
