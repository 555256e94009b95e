-- The ONNX graph builder the layers write themselves into (each layer's :onnx(g, x) sits beside its forward in
-- yolotrain.nn.modules). Values are named as torch.onnx.export names them ("/model.2/cv1/conv/Conv_output_0"),
-- weights by their state-dict names ("model.2.cv1.conv.weight"), so a graph reads like Ultralytics' export.
--
--   local g = onnx.Graph{ opset = 17, static_hw = { 640, 640 } }   -- static_hw nil: height and width dynamic
--   local y = g:call(model, "", "images")                           -- every layer emits its nodes
--   g:finish{ inputs = {...}, outputs = {...}, metadata = {...} }:save("x.onnx")
local yt = require("yolotrain.core")
local class = require("yolotrain.class")

local onnx = {}

onnx.DEFAULT_OPSET = 17
onnx.MIN_OPSET, onnx.MAX_OPSET = yt.io.onnx_min_opset, yt.io.onnx_max_opset -- io/onnx.h's YT_ONNX_*_OPSET

local Graph = class.Object:extend("Graph")
onnx.Graph = Graph

-- opts: opset, static_hw ({h, w} of the input, or nil for a dynamic size), producer, version
function Graph:init(opts)
  self.opset = opts.opset or onnx.DEFAULT_OPSET
  self.static_hw = opts.static_hw
  self.writer = yt.io.onnx_writer {
    graph = "main_graph",
    opset = self.opset,
    producer = opts.producer or "yolotrain",
    version = opts.version or yt.version,
  }
  self.prefix = "" -- the state-dict prefix of the layer emitting ("model.2.cv1")
  self.used = {} -- node names taken
  self.consts = {} -- constant key -> initializer name
  self.n_consts = 0
end

-- Emits module m's nodes with m named `name` under the current layer; returns what m:onnx returns.
function Graph:call(m, name, ...)
  if type(m.onnx) ~= "function" then
    error(
      string.format(
        "ONNX export: %s (%s) has no :onnx(g, x) method: a custom layer must define one beside "
          .. "its forward to be exported",
        m.__name or "a layer",
        name
      ),
      0
    )
  end
  local saved = self.prefix
  if name ~= "" then self.prefix = saved == "" and name or (saved .. "." .. name) end
  local out = table.pack(m:onnx(self, ...))
  self.prefix = saved
  return table.unpack(out, 1, out.n)
end

-- torch.onnx's node names: "/model.2/cv1/conv/Conv", then "Conv_1", ... for repeats in one scope
function Graph:node_name(op)
  local scope = self.prefix == "" and "" or ("/" .. self.prefix:gsub("%.(%a)", "/%1"))
  local base = scope .. "/" .. op
  local name, k = base, 0
  while self.used[name] do
    k = k + 1
    name = base .. "_" .. k
  end
  self.used[name] = true
  return name
end

-- One node; returns its output names (n_out of them, default 1). attrs: see yt.io.onnx_writer.
function Graph:op(op, inputs, attrs, n_out)
  local name = self:node_name(op)
  local outputs = {}
  for i = 1, n_out or 1 do
    outputs[i] = string.format("%s_output_%d", name, i - 1)
  end
  self.writer:node(op, name, inputs, outputs, attrs)
  return table.unpack(outputs)
end

-- A weight of the emitting layer as an initializer named by its state-dict name (prefix.field).
function Graph:param(t, field)
  local name = self.prefix == "" and field or (self.prefix .. "." .. field)
  self.writer:initializer(name, t:detach():contiguous())
  return name
end

-- A constant tensor (values: a flat list, shape, dtype "int64"/"float32"), shared between uses of equal content.
function Graph:const(values, shape, dtype)
  dtype = dtype or "int64"
  local key = dtype .. "|" .. table.concat(shape, "x") .. "|" .. table.concat(values, ",")
  if self.consts[key] then return self.consts[key] end
  self.n_consts = self.n_consts + 1
  local name = string.format("/const_%d", self.n_consts)
  local t
  if #values == 0 then
    t = yt.zeros(shape, dtype)
  else
    t = yt.tensor(values, dtype):reshape(shape)
  end
  self.writer:initializer(name, t)
  self.consts[key] = name
  return name
end

function Graph:ints(list) return self:const(list, { #list }, "int64") end
function Graph:scalar(v) return self:const({ v }, {}, "float32") end

-- x[:, start:stop] along axis (0-based, stop exclusive)
function Graph:slice(x, axis, start, stop)
  return self:op("Slice", { x, self:ints({ start }), self:ints({ stop }), self:ints({ axis }) })
end

-- x split along axis into pieces of the given sizes (Split takes them as an input from opset 13 on)
function Graph:split(x, axis, sizes)
  if self.opset >= 13 then return self:op("Split", { x, self:ints(sizes) }, { axis = axis }, #sizes) end
  return self:op("Split", { x }, { axis = axis, split = sizes }, #sizes)
end

-- The whole graph's interface and metadata, then the writer (call :save(path) on it).
function Graph:finish(spec)
  for _, v in ipairs(spec.inputs) do
    self.writer:input(v[1], v[2])
  end
  for _, v in ipairs(spec.outputs) do
    self.writer:output(v[1], v[2])
  end
  for _, kv in ipairs(spec.metadata or {}) do
    self.writer:metadata(kv[1], kv[2])
  end
  return self.writer
end

return onnx
