-- The YOLOv8 building blocks, composed from core ops. Names of children and parameters equal Ultralytics'
-- state-dict names (conv.weight, bn.running_var, cv1, cv2, m.0, ...), so its weights load unchanged.
--
-- A recipe defines its own layer the same way: extend Module, call Module.init(self), assign its sub-layers and
-- Parameters to fields (`self.cv1 = Conv(c, c, 3)`, `self.w = Parameter(yt.ones({ c }))`: registered in that order,
-- as torch does; add_module / register_parameter / register_buffer do the same explicitly), implement forward (and
-- :onnx(g, x) for ONNX export), then modules.register("MyLayer", MyLayer, { channels = function(c1, args) ... end })
-- to use it in a YAML.
local yt = require("yolotrain.core")
local Module = require("yolotrain.nn.module")

local M = { Module = Module, Parameter = Module.Parameter }

-- FLOP counting (thop's rules, used by info()): while `counter.active`, layers add their multiply-adds.
local counter = { active = false, macs = 0, include_bn = true }
M.flop_counter = counter

-- Memory: a forward frees each tensor it made as soon as it has no more use for it (t:free(): the storage goes
-- at once unless a saved tensor of the autograd tape or another handle still reads it), not at the step's end. What
-- a forward is given belongs to its caller, what it returns to whoever receives it (docs/DEVELOPING.md, "Memory").

-- y, made from x: frees x, an intermediate of the calling forward, unless it is y itself or `input` (the forward's
-- own input, which is its caller's); returns y.
local function consumed(x, y, input)
  if x ~= y and x ~= input then x:free() end
  return y
end
M.consumed = consumed

-- ---- the fused inference path ----
-- After fuse() (BatchNorm folded into the convolutions; Detection_Model:fuse marks every Conv2d `fused`) and with
-- grad mode off, a Conv runs as one prepared oneDNN primitive (yt.nn.conv2d_plan: convolution + bias + SiLU, the
-- weights reordered once; activations stay channels-last from layer to layer), and so does a fused Conv2d (the
-- Detect head's last ones); Bottleneck's shortcut is added by its second convolution, and Detect decodes in one C
-- pass (yt.nn.detect_decode). M.fused_inference = false (or YT_FUSED_INFER=0 in the environment) runs the ops of the
-- training path instead.
M.fused_inference = os.getenv("YT_FUSED_INFER") ~= "0"

-- layer -> { plan =, conv =, weight =, bias = }. Kept out of the layers' fields, so that a deep copy of a model
-- (the EMA) makes its own plans; weak, so that a model that is collected takes its plans along (their __gc).
local plans = setmetatable({}, { __mode = "k" })

local function release_plan(layer)
  local e = plans[layer]
  if e then
    plans[layer] = nil
    e.plan:close()
  end
end

-- The plan of layer (a Conv, or a fused Conv2d) running the Conv2d conv then activation act ("silu" or "none"):
-- nil when the ops must run (grad mode on, counting FLOPs, fused_inference off). Made on first use, made again
-- when the convolution or its tensors were replaced. A plan holds a copy of the weights as they were when it was
-- made: after changing a fused model's weights in place, call model:release_plans().
local function plan_of(layer, conv, act)
  if not M.fused_inference or counter.active or yt.is_grad_enabled() then return nil end
  local e = plans[layer]
  if e and e.conv == conv and e.weight == conv.weight and e.bias == conv.bias and not e.plan:closed() then
    return e.plan
  end
  release_plan(layer)
  local plan = yt.nn.conv2d_plan(conv.weight, conv.bias, conv.stride, conv.padding, act)
  plans[layer] = { plan = plan, conv = conv, weight = conv.weight, bias = conv.bias }
  return plan
end

local function uniform_(t, bound)
  -- deterministic per-process init through yt.rand (seeded by yt.manual_seed)
  local r = yt.rand(t:shape())
  t:copy_(r * (2 * bound) - bound)
  return t
end

-- ---- primitive layers ----

local Conv2d = Module:extend("Conv2d")
M.Conv2d = Conv2d

-- Conv2d(c1, c2, k, s, p, bias): PyTorch's default init (uniform +-1/sqrt(fan_in)) for weight and bias.
function Conv2d:init(c1, c2, k, s, p, bias)
  Module.init(self)
  k, s = k or 1, s or 1
  p = p or (k // 2)
  self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding = c1, c2, k, s, p
  local bound = 1 / math.sqrt(c1 * k * k)
  self:register_parameter("weight", uniform_(yt.empty({ c2, c1, k, k }), bound))
  if bias then self:register_parameter("bias", uniform_(yt.empty({ c2 }), bound)) end
end

function Conv2d:forward(x)
  if self.fused and self.bias then
    local plan = plan_of(self, self, "none")
    if plan then return plan:forward(x) end
    release_plan(self) -- a forward with gradients may change the weights: a plan made before would be stale
  end
  local y = yt.nn.conv2d(x, self.weight, self.bias, self.stride, self.padding)
  if counter.active then
    counter.macs = counter.macs + y:numel() * self.in_channels * self.kernel_size * self.kernel_size
  end
  return y
end
-- ONNX export (yolotrain.utils.onnx): each layer writes the nodes of its forward beside it.
Conv2d.release_plan = release_plan
function Conv2d:onnx(g, x)
  local k, s, p = self.kernel_size, self.stride, self.padding
  local inputs = { x, g:param(self.weight, "weight") }
  if self.bias then inputs[3] = g:param(self.bias, "bias") end
  return g:op(
    "Conv",
    inputs,
    { kernel_shape = { k, k }, strides = { s, s }, pads = { p, p, p, p }, dilations = { 1, 1 }, group = 1 }
  )
end

local BatchNorm2d = Module:extend("BatchNorm2d")
M.BatchNorm2d = BatchNorm2d

-- Ultralytics sets eps 1e-3 and momentum 0.03 on every BatchNorm2d (initialize_weights).
function BatchNorm2d:init(c, eps, momentum)
  Module.init(self)
  self.num_features, self.eps, self.momentum = c, eps or 1e-3, momentum or 0.03
  self:register_parameter("weight", yt.ones({ c }))
  self:register_parameter("bias", yt.zeros({ c }))
  self:register_buffer("running_mean", yt.zeros({ c }))
  self:register_buffer("running_var", yt.ones({ c }))
  self:register_buffer("num_batches_tracked", yt.zeros({}, "int64"))
end

-- The batch-norm op itself (yt.nn.batch_norm, or fused with SiLU: yt.nn.batch_norm_silu), with the step count and the
-- FLOP counter's share.
function BatchNorm2d:_apply(op, x)
  if self.training then
    local n = self.num_batches_tracked
    n:set(n:item() + 1)
  end
  if counter.active and counter.include_bn then counter.macs = counter.macs + 4 * x:numel() end
  return op(x, self.weight, self.bias, self.running_mean, self.running_var, self.training, self.momentum, self.eps)
end
function BatchNorm2d:forward(x) return self:_apply(yt.nn.batch_norm, x) end
-- silu(self(x)) as one op: bitwise the same, without storing the BN output for backward (Conv uses it).
function BatchNorm2d:forward_silu(x) return self:_apply(yt.nn.batch_norm_silu, x) end
function BatchNorm2d:onnx(g, x)
  return g:op("BatchNormalization", {
    x,
    g:param(self.weight, "weight"),
    g:param(self.bias, "bias"),
    g:param(self.running_mean, "running_mean"),
    g:param(self.running_var, "running_var"),
  }, { epsilon = self.eps + 0.0 })
end

local SiLU = Module:extend("SiLU")
M.SiLU = SiLU
function SiLU:forward(x) return yt.silu(x) end
function SiLU:onnx(g, x) return g:op("Mul", { x, g:op("Sigmoid", { x }) }) end

local Identity = Module:extend("Identity")
M.Identity = Identity
function Identity:forward(x) return x end
function Identity:onnx(g, x) return x end

local MaxPool2d = Module:extend("MaxPool2d")
M.MaxPool2d = MaxPool2d
function MaxPool2d:init(k, s, p)
  Module.init(self)
  self.kernel_size, self.stride, self.padding = k, s or k, p or 0
end
function MaxPool2d:forward(x) return yt.nn.max_pool2d(x, self.kernel_size, self.stride, self.padding) end
function MaxPool2d:onnx(g, x)
  local k, s, p = self.kernel_size, self.stride, self.padding
  return g:op("MaxPool", { x }, { kernel_shape = { k, k }, strides = { s, s }, pads = { p, p, p, p }, ceil_mode = 0 })
end

local Upsample = Module:extend("Upsample")
M.Upsample = Upsample
function Upsample:init(size, scale_factor, mode)
  Module.init(self)
  if size ~= nil then error("Upsample: only scale_factor is supported, not size", 2) end
  if (mode or "nearest") ~= "nearest" then error("Upsample: only mode 'nearest' is supported", 2) end
  if scale_factor ~= math.floor(scale_factor) then error("Upsample: the scale factor must be an integer", 2) end
  self.scale_factor = math.floor(scale_factor)
end
function Upsample:forward(x)
  local y = yt.nn.upsample_nearest(x, self.scale_factor)
  if counter.active then counter.macs = counter.macs + y:numel() end
  return y
end
-- PyTorch's nearest: source index floor(dst / scale), i.e. Resize's asymmetric + floor
function Upsample:onnx(g, x)
  local f = self.scale_factor + 0.0
  local roi = g.opset >= 13 and "" or g:const({}, { 0 }, "float32") -- an input until opset 13
  return g:op(
    "Resize",
    { x, roi, g:const({ 1.0, 1.0, f, f }, { 4 }, "float32") },
    { mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor" }
  )
end

local Concat = Module:extend("Concat")
M.Concat = Concat
function Concat:init(dimension)
  Module.init(self)
  self.d = dimension or 1 -- a PyTorch dimension (0-based) as written in the YAML
end
function Concat:forward(xs) return yt.cat(xs, self.d + 1) end
function Concat:onnx(g, xs) return g:op("Concat", xs, { axis = self.d }) end

local Sequential = Module:extend("Sequential")
M.Sequential = Sequential
function Sequential:init(...)
  Module.init(self)
  self.items = {}
  for i, m in ipairs({ ... }) do
    self:append(m)
  end
end
function Sequential:append(m)
  self:add_module(tostring(#self.items), m)
  self.items[#self.items + 1] = m
  return m
end
function Sequential:forward(x)
  local input = x
  for _, m in ipairs(self.items) do
    local y = m(x)
    if yt.is_tensor(x) then consumed(x, y, input) end
    x = y
  end
  return x
end
function Sequential:onnx(g, x)
  for i, m in ipairs(self.items) do
    x = g:call(m, tostring(i - 1), x)
  end
  return x
end
Sequential.__len = function(self) return #self.items end

local ModuleList = Sequential:extend("ModuleList")
M.ModuleList = ModuleList
function ModuleList:forward() error("ModuleList is a container: call its items", 2) end

-- ---- YOLO blocks ----

local Conv = Module:extend("Conv")
M.Conv = Conv
-- One SiLU shared by every Conv, as in Ultralytics (it counts once in the layer total).
Conv.default_act = SiLU()

-- Conv(c1, c2, k=1, s=1, p=k//2, g=1, d=1, act=true): conv (no bias) + BatchNorm + SiLU.
function Conv:init(c1, c2, k, s, p, g, d, act)
  Module.init(self)
  k, s = k or 1, s or 1
  if (g or 1) ~= 1 then error("Conv: grouped convolutions are not supported", 2) end
  if (d or 1) ~= 1 then error("Conv: dilated convolutions are not supported", 2) end
  self.c1, self.c2 = c1, c2
  self:add_module("conv", Conv2d(c1, c2, k, s, p, false))
  self:add_module("bn", BatchNorm2d(c2))
  if act == nil or act == true then
    self:add_module("act", Conv.default_act)
  elseif act ~= false then
    self:add_module("act", act)
  end
end

-- The plan of a fused Conv (no BatchNorm left; a plain Conv2d with a bias; SiLU or no activation), or nil.
function Conv:infer_plan()
  local conv, act = self.conv, self.act
  if self.bn or not conv.bias or conv.forward ~= Conv2d.forward then return nil end
  local kind = (act == nil or act.forward == Identity.forward) and "none" or act.forward == SiLU.forward and "silu"
  return kind and plan_of(self, conv, kind) or nil
end
Conv.release_plan = release_plan

-- BatchNorm then SiLU run as one op (BatchNorm2d:forward_silu); a BatchNorm or an activation whose forward is
-- another (synchronised BN replaces it) runs as given.
function Conv:forward(x)
  local plan = self:infer_plan()
  if plan then return plan:forward(x) end
  release_plan(self) -- a forward with gradients may change the weights: a plan made before would be stale
  local y = self.conv(x)
  local bn, act = self.bn, self.act
  if bn and act and bn.forward == BatchNorm2d.forward and act.forward == SiLU.forward then
    return consumed(y, bn:forward_silu(y), x)
  end
  if bn then y = consumed(y, bn(y), x) end
  if act then y = consumed(y, act(y), x) end
  return y
end
function Conv:onnx(g, x)
  local y = g:call(self.conv, "conv", x)
  if self.bn then y = g:call(self.bn, "bn", y) end
  if self.act then y = g:call(self.act, "act", y) end
  return y
end

-- Folds the BatchNorm into the convolution (inference): w' = w * g/sqrt(v+eps), b' = b - m*g/sqrt(v+eps).
function Conv:fuse()
  if not self.bn then return end
  local conv, bn = self.conv, self.bn
  local c2 = conv.out_channels
  local scale = bn.weight:detach() / (bn.running_var:detach() + bn.eps):sqrt()
  local w = conv.weight:detach() * scale:reshape({ c2, 1, 1, 1 })
  local b = bn.bias:detach() - bn.running_mean:detach() * scale
  if conv.bias then b = b + conv.bias:detach() * scale end
  local fused = Conv2d(conv.in_channels, c2, conv.kernel_size, conv.stride, conv.padding, true)
  fused.weight:copy_(w)
  fused.bias:copy_(b)
  -- keep the child order (conv, act) and the name "conv"
  self:add_module("conv", fused)
  self:remove_module("bn")
end

local Bottleneck = Module:extend("Bottleneck")
M.Bottleneck = Bottleneck
-- Bottleneck(c1, c2, shortcut=true, g=1, k={3,3}, e=0.5)
function Bottleneck:init(c1, c2, shortcut, g, k, e)
  Module.init(self)
  if shortcut == nil then shortcut = true end
  k, e = k or { 3, 3 }, e or 0.5
  local c_ = math.floor(c2 * e)
  self:add_module("cv1", Conv(c1, c_, k[1], 1))
  self:add_module("cv2", Conv(c_, c2, k[2], 1, nil, g))
  self.add = shortcut and c1 == c2
end
function Bottleneck:forward(x)
  if self.add then
    local plan = self.cv2:infer_plan()
    if plan then
      local h = self.cv1(x)
      return consumed(h, plan:forward(h, x), x) -- x + cv2(...), the sum done by the convolution
    end
  end
  local h = self.cv1(x)
  local y = consumed(h, self.cv2(h), x)
  if self.add then return consumed(y, x + y, x) end
  return y
end
function Bottleneck:onnx(g, x)
  local y = g:call(self.cv2, "cv2", g:call(self.cv1, "cv1", x))
  if self.add then return g:op("Add", { x, y }) end
  return y
end

local C2f = Module:extend("C2f")
M.C2f = C2f
-- C2f(c1, c2, n=1, shortcut=false, g=1, e=0.5): CSP bottleneck with 2 convolutions, every stage kept.
function C2f:init(c1, c2, n, shortcut, g, e)
  Module.init(self)
  n, e = n or 1, e or 0.5
  self.c = math.floor(c2 * e)
  self:add_module("cv1", Conv(c1, 2 * self.c, 1, 1))
  self:add_module("cv2", Conv((2 + n) * self.c, c2, 1))
  local m = ModuleList()
  for _ = 1, n do
    m:append(Bottleneck(self.c, self.c, shortcut or false, g, { 3, 3 }, 1.0))
  end
  self:add_module("m", m)
end
function C2f:forward(x)
  local h = self.cv1(x)
  local y = yt.chunk(h, 2, 2) -- two views of h
  consumed(h, y, x)
  for _, b in ipairs(self.m.items) do
    y[#y + 1] = b(y[#y])
  end
  local c = yt.cat(y, 2)
  for _, t in ipairs(y) do
    consumed(t, c, x) -- a second free of the same handle (a block returning its input) does nothing
  end
  return consumed(c, self.cv2(c), x)
end
function C2f:onnx(g, x)
  local y = { g:split(g:call(self.cv1, "cv1", x), 1, { self.c, self.c }) }
  for i, b in ipairs(self.m.items) do
    y[#y + 1] = g:call(b, "m." .. (i - 1), y[#y])
  end
  return g:call(self.cv2, "cv2", g:op("Concat", y, { axis = 1 }))
end

local SPPF = Module:extend("SPPF")
M.SPPF = SPPF
-- SPPF(c1, c2, k=5): spatial pyramid pooling, fast: three chained max-pools.
function SPPF:init(c1, c2, k)
  Module.init(self)
  k = k or 5
  local c_ = c1 // 2
  self:add_module("cv1", Conv(c1, c_, 1, 1))
  self:add_module("cv2", Conv(c_ * 4, c2, 1, 1))
  self:add_module("m", MaxPool2d(k, 1, k // 2))
end
function SPPF:forward(x)
  local y1 = self.cv1(x)
  local y2 = self.m(y1)
  local y3 = self.m(y2)
  local y4 = self.m(y3)
  local c = yt.cat({ y1, y2, y3, y4 }, 2)
  for _, t in ipairs({ y1, y2, y3, y4 }) do
    consumed(t, c, x)
  end
  return consumed(c, self.cv2(c), x)
end
function SPPF:onnx(g, x)
  local y = { g:call(self.cv1, "cv1", x) }
  for i = 2, 4 do
    y[i] = g:call(self.m, "m", y[i - 1])
  end
  return g:call(self.cv2, "cv2", g:op("Concat", y, { axis = 1 }))
end

local DFL = Module:extend("DFL")
M.DFL = DFL
-- Distribution focal loss integral: softmax over reg_max bins, expectation through a frozen 1x1 conv (0..c1-1).
function DFL:init(c1)
  Module.init(self)
  self.c1 = c1 or 16
  local conv = Conv2d(self.c1, 1, 1, 1, 0, false)
  local w = {}
  for i = 1, self.c1 do
    w[i] = i - 1
  end
  conv.weight:copy_(yt.tensor(w):reshape({ 1, self.c1, 1, 1 }))
  conv.weight:requires_grad_(false)
  self:add_module("conv", conv)
end
-- x: (B, 4*c1, A) -> (B, 4, A)
function DFL:forward(x)
  local b, a = x:shape(1), x:shape(3)
  local p = yt.softmax(x:reshape({ b, 4, self.c1, a }):permute({ 1, 3, 2, 4 }), 2)
  return self.conv(p):reshape({ b, 4, a })
end
-- The bins go last for the Softmax (before opset 13 Softmax flattens every axis from its own on), then to axis 1
-- for the frozen 1x1 conv, as forward does.
function DFL:onnx(g, x)
  local p = g:op("Reshape", { x, g:ints({ 0, 4, self.c1, -1 }) })
  p = g:op("Softmax", { g:op("Transpose", { p }, { perm = { 0, 1, 3, 2 } }) }, { axis = 3 })
  p = g:op("Transpose", { p }, { perm = { 0, 3, 1, 2 } })
  return g:op("Reshape", { g:call(self.conv, "conv", p), g:ints({ 0, 4, -1 }) })
end

-- Anchor centres (grid units) and strides of every position of every level, as tensors (2, A) and (1, A).
function M.make_anchors(shapes, strides, offset)
  offset = offset or 0.5
  local xs, ys, ss = {}, {}, {}
  for l, hw in ipairs(shapes) do
    local h, w = hw[1], hw[2]
    for y = 0, h - 1 do
      for x = 0, w - 1 do
        xs[#xs + 1] = x + offset
        ys[#ys + 1] = y + offset
        ss[#ss + 1] = strides[l]
      end
    end
  end
  return yt.tensor({ xs, ys }), yt.tensor({ ss })
end

-- dist (B, 4, A) of l,t,r,b distances around anchors (1, 2, A) -> boxes (B, 4, A) as cx,cy,w,h or x1,y1,x2,y2
function M.dist2bbox(distance, anchor_points, xywh)
  local lt, rb = distance:narrow(2, 1, 2), distance:narrow(2, 3, 2)
  local x1y1 = anchor_points - lt
  local x2y2 = anchor_points + rb
  if xywh == false then return yt.cat({ x1y1, x2y2 }, 2) end
  return yt.cat({ (x1y1 + x2y2) * 0.5, x2y2 - x1y1 }, 2)
end

-- The anchors (1, 2, A) and strides (1, 4 or 1, A) of the levels as graph values: constants for a fixed input size,
-- computed from each level's shape (Shape, Range, Expand) when the size is dynamic.
local function onnx_anchors(g, levels, strides, static_hw)
  if static_hw then
    local shapes = {}
    for i, s in ipairs(strides) do
      shapes[i] = { static_hw[1] // s, static_hw[2] // s }
    end
    local a, st = M.make_anchors(shapes, strides, 0.5)
    -- the strides repeated for the 4 box rows: OpenCV's DNN (4.6) cannot broadcast a constant over axis 1
    local s4 = st:reshape({ -1 }):tolist()
    local n = #s4
    for r = 1, 3 do
      for k = 1, n do
        s4[r * n + k] = s4[k]
      end
    end
    return g:const(a:reshape({ -1 }):tolist(), { 1, 2, n }, "float32"), g:const(s4, { 1, 4, n }, "float32")
  end
  local anchors, level_strides = {}, {}
  for i, x in ipairs(levels) do
    local shape = g:op("Shape", { x })
    local hw = g:op("Gather", { shape, g:ints({ 2, 3 }) }, { axis = 0 })
    local function centres(dim) -- 0.5, 1.5, ... along one axis
      local n = g:op("Cast", { g:op("Gather", { shape, g:const({ dim }, {}, "int64") }, { axis = 0 }) }, { to = 1 })
      return g:op("Add", { g:op("Range", { g:scalar(0.0), n, g:scalar(1.0) }), g:scalar(0.5) })
    end
    local gx = g:op("Expand", { g:op("Reshape", { centres(3), g:ints({ 1, -1 }) }), hw })
    local gy = g:op("Expand", { g:op("Reshape", { centres(2), g:ints({ -1, 1 }) }), hw })
    local ax = g:op("Reshape", { gx, g:ints({ 1, -1 }) })
    local ay = g:op("Reshape", { gy, g:ints({ 1, -1 }) })
    anchors[i] = g:op("Concat", { ax, ay }, { axis = 0 })
    level_strides[i] = g:op("Expand", { g:const({ strides[i] + 0.0 }, { 1, 1 }, "float32"), g:op("Shape", { ax }) })
  end
  return g:op("Reshape", { g:op("Concat", anchors, { axis = 1 }), g:ints({ 1, 2, -1 }) }),
    g:op("Reshape", { g:op("Concat", level_strides, { axis = 1 }), g:ints({ 1, 1, -1 }) })
end

local Detect = Module:extend("Detect")
M.Detect = Detect
-- Detect(nc, ch): per level a box branch (cv2: Conv, Conv, 1x1 to 4*reg_max) and a class branch (cv3).
function Detect:init(nc, ch)
  Module.init(self)
  self.nc, self.nl, self.reg_max = nc or 80, #ch, 16
  self.no = self.nc + self.reg_max * 4
  self.stride = {}
  local c2 = math.max(16, ch[1] // 4, self.reg_max * 4)
  local c3 = math.max(ch[1], math.min(self.nc, 100))
  local cv2, cv3 = ModuleList(), ModuleList()
  for _, x in ipairs(ch) do
    cv2:append(Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), Conv2d(c2, 4 * self.reg_max, 1, 1, 0, true)))
    cv3:append(Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), Conv2d(c3, self.nc, 1, 1, 0, true)))
  end
  self:add_module("cv2", cv2)
  self:add_module("cv3", cv3)
  self:add_module("dfl", DFL(self.reg_max))
  self._anchor_key = nil
end

-- Ultralytics' bias init: box logits 1.0; class logits log(5 / nc / (640 / stride)^2).
function Detect:bias_init()
  for i = 1, self.nl do
    local s = self.stride[i]
    self.cv2.items[i].items[3].bias:fill_(1.0)
    self.cv3.items[i].items[3].bias:fill_(math.log(5 / self.nc / (640 / s) ^ 2))
  end
end

function Detect:forward(xs)
  local out = {}
  for i = 1, self.nl do
    local box, cls = self.cv2.items[i](xs[i]), self.cv3.items[i](xs[i])
    out[i] = yt.cat({ box, cls }, 2)
    consumed(box, out[i], xs[i])
    consumed(cls, out[i], xs[i])
  end
  if self.training then return out end
  return self:inference(out), out
end

-- Raw levels -> (B, 4 + nc, A): boxes cx,cy,w,h in input pixels, class probabilities. With grad mode off, one C
-- pass (yt.nn.detect_decode) computes what the chain of ops below does.
function Detect:inference(levels)
  if M.fused_inference and not counter.active and not yt.is_grad_enabled() then -- (the FLOP count has the DFL conv)
    return yt.nn.detect_decode(levels, self.stride, self.nc, self.dfl.conv.weight)
  end
  local b = levels[1]:shape(1)
  local flat, shapes = {}, {}
  for i, x in ipairs(levels) do
    local h, w = x:shape(3), x:shape(4)
    shapes[i] = { h, w }
    flat[i] = x:reshape({ b, self.no, h * w })
  end
  local key = table.concat(
    (function()
      local k = {}
      for i, s in ipairs(shapes) do
        k[i] = s[1] .. "x" .. s[2]
      end
      return k
    end)(),
    ","
  )
  if self._anchor_key ~= key then
    local anchors, strides = M.make_anchors(shapes, self.stride, 0.5)
    self.anchors, self.strides = anchors:reshape({ 1, 2, -1 }):keep(), strides:reshape({ 1, 1, -1 }):keep()
    self._anchor_key = key
  end
  local x = yt.cat(flat, 3)
  local box = x:narrow(2, 1, self.reg_max * 4)
  local cls = x:narrow(2, self.reg_max * 4 + 1, self.nc)
  local dbox = M.dist2bbox(self.dfl(box), self.anchors, true) * self.strides
  return yt.cat({ dbox, yt.sigmoid(cls) }, 2)
end

-- Detect:inference as a graph: (B, 4 + nc, A) named output0, boxes in input pixels as Ultralytics exports them.
function Detect:onnx(g, xs)
  local flat = {}
  for i = 1, self.nl do
    local box = g:call(self.cv2.items[i], "cv2." .. (i - 1), xs[i])
    local cls = g:call(self.cv3.items[i], "cv3." .. (i - 1), xs[i])
    flat[i] = g:op("Reshape", { g:op("Concat", { box, cls }, { axis = 1 }), g:ints({ 0, self.no, -1 }) })
  end
  local x = g:op("Concat", flat, { axis = 2 })
  local nbox = self.reg_max * 4
  local box, cls = g:slice(x, 1, 0, nbox), g:slice(x, 1, nbox, self.no)
  local anchors, strides = onnx_anchors(g, xs, self.stride, g.static_hw)
  local dist = g:call(self.dfl, "dfl", box)
  local x1y1 = g:op("Sub", { anchors, g:slice(dist, 1, 0, 2) })
  local x2y2 = g:op("Add", { anchors, g:slice(dist, 1, 2, 4) })
  local centre = g:op("Mul", { g:op("Add", { x1y1, x2y2 }), g:scalar(0.5) })
  local dbox = g:op("Mul", { g:op("Concat", { centre, g:op("Sub", { x2y2, x1y1 }) }, { axis = 1 }), strides })
  return g:op("Concat", { dbox, g:op("Sigmoid", { cls }) }, { axis = 1 })
end

-- ---- registry of the modules a model YAML can name ----

local registry = {}
M.registry = registry

-- spec.kind: "conv" (args start with c2; c1 is prepended and c2 width-scaled), "repeat" (like conv, with n
-- inserted as the third argument: C2f), "concat", "detect", "passthrough" (output channels = input channels).
-- spec.channels(c1_or_list, args) -> c2 may be given instead for custom layers.
function M.register(name, cls, spec)
  assert(type(name) == "string", "register: name must be a string")
  registry[name] = { cls = cls, spec = spec or { kind = "passthrough" } }
end

M.register("Conv", Conv, { kind = "conv" })
M.register("Bottleneck", Bottleneck, { kind = "conv" })
M.register("SPPF", SPPF, { kind = "conv" })
M.register("C2f", C2f, { kind = "repeat" })
M.register("Concat", Concat, { kind = "concat" })
M.register("Detect", Detect, { kind = "detect" })
M.register("Upsample", Upsample, { kind = "passthrough" })
M.register("MaxPool2d", MaxPool2d, { kind = "passthrough" })
M.register("Identity", Identity, { kind = "passthrough" })

return M
