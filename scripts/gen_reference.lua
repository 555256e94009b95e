-- Fills the generated sections of docs/reference.md from the code, keeping the descriptions written by hand.
--
--   build/yolotrain scripts/gen_reference.lua           rewrites docs/reference.md and reports what changed
--   build/yolotrain scripts/gen_reference.lua --check   exits 1 (writing nothing) when the file is not current
--
-- A generated section sits between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`. It holds tables (and
-- the headings between them) that this script writes: the names come from the code (the event list, the cfg
-- defaults, the settings, class tables walked member by member, attributes assigned in each class's file, the
-- tensor metatable, the yt.* module), so a name that exists in code gets a row and a name that is gone loses its
-- row. Cells the code can say (signatures of Lua functions, defaults, meanings from cfg/default.lua) are rewritten
-- every run; the others are descriptions written by hand, kept by the row's name. A new row gets UNDOCUMENTED in
-- those cells: write them, and tests/lua/reference_spec.lua passes again.
--
-- Loaded with dofile() (as the spec does) it only returns its functions.
local M = {}

local function script_dir()
  local src = debug.getinfo(1, "S").source:sub(2)
  return src:match("(.*/)") or "./"
end

M.ROOT = script_dir() .. "../"
M.DOC = "docs/reference.md"
M.UNDOC = "UNDOCUMENTED"
package.path = M.ROOT .. "lua/?.lua;" .. M.ROOT .. "lua/?/init.lua;" .. package.path

local yt = require("yolotrain.core")
local class = require("yolotrain.class")

local function read(rel)
  local f = io.open(M.ROOT .. rel, "rb")
  if not f then error(string.format("gen_reference: cannot read %s", rel), 0) end
  local s = f:read("a")
  f:close()
  return s
end
M.read = read

local function sorted_keys(t, filter)
  local out = {}
  for k in pairs(t) do
    if type(k) == "string" and (not filter or filter(k)) then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

local function code(s) return "`" .. s .. "`" end
-- Text from the code shown as markdown: "<name>" would be taken for an HTML tag.
local function plain(s) return (tostring(s):gsub("<", "\\<")) end

-- ---- cells ----

-- A cell written by hand: kept from the existing row (UNDOCUMENTED in a new one).
local KEEP = setmetatable({}, { __tostring = function() return "KEEP" end })
M.KEEP = KEEP
-- A cell written by hand that a new row starts with `default` in (a signature the code cannot tell).
local function keep_or(default) return { keep_or = default } end

-- ---- the markdown side ----

-- The cells of a table row "| a | b \| c |" (an escaped bar stays in its cell).
function M.split_row(line)
  local body = line:match("^%s*|(.*)|%s*$")
  if not body then return nil end
  local cells, cur, i = {}, {}, 1
  while i <= #body do
    local c = body:sub(i, i)
    if c == "\\" and body:sub(i + 1, i + 1) == "|" then
      cur[#cur + 1] = "\\|"
      i = i + 2
    elseif c == "|" then
      cells[#cells + 1] = table.concat(cur):match("^%s*(.-)%s*$")
      cur = {}
      i = i + 1
    else
      cur[#cur + 1] = c
      i = i + 1
    end
  end
  cells[#cells + 1] = table.concat(cur):match("^%s*(.-)%s*$")
  return cells
end

-- The name a row documents, from its first cell: the first code span's name before "(" (or the whole span), then
-- its last component (`Engine_Trainer:train()` -> train, `t.grad` -> grad), or all of it when full (yt.sys.rss).
function M.row_key(cell, full)
  local span = cell:match("`([^`]+)`") or cell
  local tok = span:match("^([%w_%.:]+)%s*%(") or span:match("^[%w_%.:]+") or span
  if full then return tok end
  return tok:match("([%w_]+)$") or tok
end

local BEGIN, END = "<!-- generated:", "<!-- /generated:"

-- The generated sections of a document: list of { name, body, s, e } (s..e: the whole section with its markers).
function M.sections(text)
  local out, pos = {}, 1
  while true do
    local s, e, name = text:find("<!%-%- generated:([%w_:.%-]+) %-%->\n", pos)
    if not s then
      local stray = text:find(END, pos, true)
      if stray then error("docs/reference.md: an end marker without its start near byte " .. stray, 0) end
      break
    end
    local close = END .. name .. " -->"
    local cs, ce = text:find(close, e + 1, true)
    if not cs then error(string.format("docs/reference.md: section '%s' has no end marker %s", name, close), 0) end
    local inner = text:find(BEGIN, e + 1, true)
    if inner and inner < cs then
      error(string.format("docs/reference.md: section '%s' is not closed before the next one starts", name), 0)
    end
    out[#out + 1] = { name = name, body = text:sub(e + 1, cs - 1), s = s, e = ce }
    pos = ce + 1
  end
  return out
end

-- The rows of a section body: list of cells, and key -> cells (header rows and separators left out).
function M.parse_rows(body, full)
  local rows, by_key = {}, {}
  local lines = {}
  for line in (body .. "\n"):gmatch("(.-)\n") do
    lines[#lines + 1] = line
  end
  for i, line in ipairs(lines) do
    local cells = M.split_row(line)
    local next_cells = lines[i + 1] and M.split_row(lines[i + 1])
    local is_sep = cells and cells[1]:match("^:?%-%-%-+:?$")
    local is_header = cells and next_cells and next_cells[1]:match("^:?%-%-%-+:?$")
    if cells and not is_sep and not is_header then
      local key = M.row_key(cells[1], full)
      if by_key[key] then error(string.format("docs/reference.md: '%s' is listed twice in one section", key), 0) end
      rows[#rows + 1] = { key = key, cells = cells }
      by_key[key] = cells
    end
  end
  return rows, by_key
end

local function escape_cell(s) return (tostring(s):gsub("\n", " "):gsub("([^\\])|", "%1\\|")) end

-- Renders one section: its parts (heading, text, table), hand-written cells taken from `old` (key -> cells).
local function render(spec, old, report)
  local out = {}
  for pi, part in ipairs(spec.parts) do
    if pi > 1 then out[#out + 1] = "" end
    if part.heading then
      out[#out + 1] = part.heading
      out[#out + 1] = ""
    end
    if part.text then
      out[#out + 1] = part.text
      out[#out + 1] = ""
    end
    if #part.rows == 0 then
      out[#out + 1] = part.empty or "(none)"
    else
      out[#out + 1] = "| " .. table.concat(part.header, " | ") .. " |"
      local sep = {}
      for i = 1, #part.header do
        sep[i] = "---"
      end
      out[#out + 1] = "| " .. table.concat(sep, " | ") .. " |"
      for _, row in ipairs(part.rows) do
        local prev = old[row.key]
        local by_hand = false
        for _, c in ipairs(row.cells) do
          by_hand = by_hand or type(c) == "table"
        end
        if not prev and by_hand then report.added[#report.added + 1] = spec.name .. ": " .. row.key end
        local cells = {}
        for i, c in ipairs(row.cells) do
          if c == KEEP then
            cells[i] = prev and prev[i] or M.UNDOC
          elseif type(c) == "table" then
            cells[i] = prev and prev[i] or c.keep_or
          else
            cells[i] = escape_cell(c)
          end
          if cells[i] == "" then cells[i] = M.UNDOC end
        end
        out[#out + 1] = "| " .. table.concat(cells, " | ") .. " |"
      end
    end
  end
  return table.concat(out, "\n") .. "\n"
end

-- ---- introspection ----

-- The method a class.lua class stores (its receiver check unwrapped), and whether it was such a method.
function M.unwrap(fn)
  local i, inner, has_cls = 1, nil, false
  while true do
    local name, v = debug.getupvalue(fn, i)
    if not name then break end
    if name == "fn" then
      inner = v
    elseif name == "Cls" then
      has_cls = true
    end
    i = i + 1
  end
  if inner and has_cls and type(inner) == "function" then return inner, true end
  return fn, false
end

-- Parameter names of a Lua function ("..." last when it is vararg), or nil for a C function.
function M.params(fn)
  fn = M.unwrap(fn)
  local info = debug.getinfo(fn, "Su")
  if info.what == "C" then return nil end
  local names = {}
  for i = 1, info.nparams do
    names[i] = debug.getlocal(fn, i)
  end
  if info.isvararg then names[#names + 1] = "..." end
  return names, info.short_src, info.linedefined
end

local RECEIVERS = { self = true, Cls = true, Parent = true }

-- "Name:method(a, b)" for a class's functions whose first parameter is the receiver, else "Name.fn(a, b)".
local function signature(prefix, name, fn, as_function)
  local p = M.params(fn)
  if not p then return prefix .. "." .. name .. "(…)" end
  if not as_function and RECEIVERS[p[1]] then return prefix .. ":" .. name .. "(" .. table.concat(p, ", ", 2) .. ")" end
  return prefix .. "." .. name .. "(" .. table.concat(p, ", ") .. ")"
end

local function args_of(fn, drop_receiver)
  local p = M.params(fn) or { "…" }
  return table.concat(p, ", ", (drop_receiver and RECEIVERS[p[1]]) and 2 or 1)
end

local function repr(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" and not class.is_class(v) and #v > 0 and #v <= 8 then
    local parts = {}
    for i, x in ipairs(v) do
      if type(x) == "table" then return "table" end
      parts[i] = repr(x)
    end
    return "{ " .. table.concat(parts, ", ") .. " }"
  end
  if class.is_class(v) then return "class " .. tostring(rawget(v, "__name")) end
  if type(v) == "table" then return "table" end
  return tostring(v)
end

-- The metamethods a class may define that say how its objects are used.
local USAGE_META = {
  __call = function(obj, fn) return string.format("%s(%s)", obj, args_of(fn, true)) end,
  __len = function(obj) return "#" .. obj end,
  __tostring = function(obj) return "tostring(" .. obj .. ")" end,
  __close = function(obj) return "local " .. obj .. " <close>" end,
}

-- The order members are listed in: the constructor, how objects are used, methods, then values.
local function member_rank(Cls, k)
  if k == "init" then return 0 end
  if USAGE_META[k] then return 1 end
  return type(rawget(Cls, k)) == "function" and 2 or 3
end

-- Members a class table defines itself (inherited metamethod copies left out): list of { name, value }.
function M.own_members(Cls)
  local parent = rawget(Cls, "__parent")
  local out = {}
  local keys = sorted_keys(Cls)
  table.sort(keys, function(a, b)
    local ra, rb = member_rank(Cls, a), member_rank(Cls, b)
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  for _, k in ipairs(keys) do
    local v = rawget(Cls, k)
    if USAGE_META[k] then
      if not (parent and parent[k] == v) then out[#out + 1] = { k, v } end
    elseif not k:match("^_") then
      out[#out + 1] = { k, v }
    end
  end
  return out
end

-- The functions of a Lua source file grouped by the local name their methods are defined on:
-- ranges[var] = list of { first, last } line numbers of `function var:m(...)` / `function var.m(...)` /
-- `var.m = function` bodies (up to the next top-level function).
local function method_lines(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\n") do
    lines[#lines + 1] = line:gsub("%-%-.*$", "")
  end
  local owner = {}
  local cur
  for i, line in ipairs(lines) do
    local v = line:match("^function ([%w_]+)[:.]") or line:match("^([%w_]+)%.[%w_]+%s*=%s*function")
    if v then
      cur = v
    elseif line:match("^local function") or line:match("^function [%w_]+%(") or line:match("^[%w_]+%(") then
      cur = nil
    end
    owner[i] = cur
  end
  return lines, owner
end

-- Attributes the methods of the class held in local `var` assign: `self.x =`, `self.a, self.b =`,
-- `rawset(self, "x", ...)`. Names starting with "_" are private and left out.
function M.scan_attributes(file, var)
  local lines, owner = method_lines(read(file))
  local found = {}
  for i, line in ipairs(lines) do
    if owner[i] == var then
      for name, e in line:gmatch("self%.([%a_][%w_]*)()") do
        local rest = line:sub(e)
        while true do
          local r = rest:match("^%s*,%s*self%.[%a_][%w_]*(.*)$")
          if not r then break end
          rest = r
        end
        -- (the value may start on the next line)
        if rest:match("^%s*=[^=]") or rest:match("^%s*=%s*$") then found[name] = true end
      end
      for name in line:gmatch('rawset%(%s*self%s*,%s*"([%w_]+)"') do
        found[name] = true
      end
    end
  end
  return found
end

-- Field names of the table constructor a plain metatable's objects are made from: setmetatable({ a = , b = }, Var).
function M.scan_constructor_fields(file, var)
  local text = read(file)
  local found = {}
  for tbl in text:gmatch("setmetatable%(%s*(%b{})%s*,%s*" .. var .. "%s*%)") do
    local flat = tbl:sub(2, -2):gsub("%b{}", "{}"):gsub("%b()", "()")
    for name in flat:gmatch("([%a_][%w_]*)%s*=[^=]") do
      found[name] = true
    end
  end
  return found
end

-- Names registered in the class's methods: register_parameter / register_buffer / add_module("name", ...).
local function scan_registered(file, var)
  local lines, owner = method_lines(read(file))
  local found, order = {}, {}
  for i, line in ipairs(lines) do
    if owner[i] == var then
      for name in line:gmatch(':register_[%w_]+%("([%w_]+)"') do
        if not found[name] then
          found[name] = true
          order[#order + 1] = name
        end
      end
      for name in line:gmatch(':add_module%("([%w_]+)"') do
        if not found[name] then
          found[name] = true
          order[#order + 1] = name
        end
      end
    end
  end
  return order
end

-- Every Lua file under lua/yolotrain (relative paths, sorted).
local function lua_files()
  local out = {}
  local function walk(rel)
    for _, n in ipairs(yt.sys.listdir(M.ROOT .. rel) or {}) do
      local p = rel .. "/" .. n
      local st = yt.sys.stat(M.ROOT .. p)
      if st and st.is_dir then
        walk(p)
      elseif n:match("%.lua$") then
        out[#out + 1] = p
      end
    end
  end
  walk("lua/yolotrain")
  table.sort(out)
  return out
end

-- ---- what the code has ----

-- The engine classes: the class, the file its methods are in, the local name they are defined on, how an
-- object is written in examples, and the class whose attributes it inherits.
M.CLASSES = {
  {
    name = "Object",
    get = function() return class.Object end,
    file = "lua/yolotrain/class.lua",
    obj = "obj",
    attrs = false,
  },
  {
    name = "Engine_Trainer",
    get = function() return require("yolotrain.engine.trainer") end,
    file = "lua/yolotrain/engine/trainer.lua",
    obj = "trainer",
  },
  {
    name = "Detection_Trainer",
    get = function() return require("yolotrain.models.yolo.detect.train") end,
    file = "lua/yolotrain/models/yolo/detect/train.lua",
    obj = "trainer",
    parent = "Engine_Trainer",
  },
  {
    name = "Optimizer",
    get = function() return require("yolotrain.engine.trainer").Optimizer end,
    file = "lua/yolotrain/engine/trainer.lua",
    obj = "trainer.optimizer",
  },
  {
    name = "ModelEMA",
    get = function() return require("yolotrain.utils.torch_utils").ModelEMA end,
    file = "lua/yolotrain/utils/torch_utils.lua",
    obj = "trainer.ema",
  },
  {
    name = "Engine_Validator",
    get = function() return require("yolotrain.engine.validator") end,
    file = "lua/yolotrain/engine/validator.lua",
    obj = "validator",
  },
  {
    name = "Detection_Validator",
    get = function() return require("yolotrain.models.yolo.detect.val") end,
    file = "lua/yolotrain/models/yolo/detect/val.lua",
    obj = "validator",
    parent = "Engine_Validator",
  },
  {
    name = "Engine_Predictor",
    get = function() return require("yolotrain.engine.predictor") end,
    file = "lua/yolotrain/engine/predictor.lua",
    obj = "predictor",
  },
  {
    name = "Detection_Predictor",
    get = function() return require("yolotrain.models.yolo.detect.predict") end,
    file = "lua/yolotrain/models/yolo/detect/predict.lua",
    obj = "predictor",
    parent = "Engine_Predictor",
  },
  {
    name = "Results",
    get = function() return require("yolotrain.engine.results").Results end,
    file = "lua/yolotrain/engine/results.lua",
    obj = "r",
  },
  {
    name = "Boxes",
    get = function() return require("yolotrain.engine.results").Boxes end,
    file = "lua/yolotrain/engine/results.lua",
    obj = "r.boxes",
    extra_attrs = function() return require("yolotrain.engine.results").BOX_PROPERTIES end,
  },
  {
    name = "Exporter",
    get = function() return require("yolotrain.engine.exporter") end,
    file = "lua/yolotrain/engine/exporter.lua",
    obj = "exporter",
  },
  {
    name = "Module",
    get = function() return require("yolotrain.nn.module") end,
    file = "lua/yolotrain/nn/module.lua",
    obj = "m",
  },
  {
    name = "Detection_Model",
    get = function() return require("yolotrain.nn.tasks").Detection_Model end,
    file = "lua/yolotrain/nn/tasks.lua",
    obj = "model",
    parent = "Module",
  },
  {
    name = "v8DetectionLoss",
    get = function() return require("yolotrain.utils.loss").v8DetectionLoss end,
    file = "lua/yolotrain/utils/loss.lua",
    obj = "criterion",
  },
  {
    name = "Graph",
    get = function() return require("yolotrain.utils.onnx").Graph end,
    file = "lua/yolotrain/utils/onnx.lua",
    obj = "g",
  },
  {
    name = "Base_Dataset",
    get = function() return require("yolotrain.data").Base_Dataset end,
    file = "lua/yolotrain/data/dataset.lua",
    obj = "dataset",
  },
  {
    name = "YOLO_Dataset",
    get = function() return require("yolotrain.data").YOLO_Dataset end,
    file = "lua/yolotrain/data/dataset.lua",
    obj = "dataset",
    parent = "Base_Dataset",
  },
  {
    name = "Loader",
    get = function() return require("yolotrain.data").Loader end,
    file = "lua/yolotrain/data/loader.lua",
    obj = "loader",
  },
  {
    name = "Metric",
    get = function() return require("yolotrain.utils.metrics").Metric end,
    file = "lua/yolotrain/utils/metrics.lua",
    obj = "metric",
  },
  {
    name = "DetMetrics",
    get = function() return require("yolotrain.utils.metrics").DetMetrics end,
    file = "lua/yolotrain/utils/metrics.lua",
    obj = "metrics",
    extra_attrs = function() return rawget(require("yolotrain.utils.metrics").DetMetrics, "__properties") end,
  },
}
local CLASS_BY_NAME = {}
for _, c in ipairs(M.CLASSES) do
  CLASS_BY_NAME[c.name] = c
end

-- Module tables whose functions and values recipes use (classes in them have sections of their own).
M.MODULES = {
  { name = "yolotrain.cfg", short = "cfg" },
  { name = "yolotrain.utils.settings", short = "settings" },
  { name = "yolotrain.utils.callbacks", short = "callbacks" },
  { name = "yolotrain.class", short = "class" },
  { name = "yolotrain.nn.tasks", short = "tasks" },
  { name = "yolotrain.nn.modules", short = "modules", classes = false },
  { name = "yolotrain.data", short = "data" },
  { name = "yolotrain.engine.results", short = "results" },
  { name = "yolotrain.utils.torch_utils", short = "torch_utils" },
  { name = "yolotrain.utils.errors", short = "errors" },
  { name = "yolotrain.utils.loss", short = "loss" },
  { name = "yolotrain.utils.onnx", short = "onnx" },
}

-- The C userdata types recipes can hold (registry metatable names).
M.USERDATA = {
  { mt = "yt.Optimizer", obj = "opt", made = "yt.optim.new" },
  { mt = "yt.OnnxWriter", obj = "w", made = "yt.io.onnx_writer" },
  { mt = "yt.DataDataset", obj = "ds", made = "yt.data.dataset" },
  { mt = "yt.DataLoader", obj = "ld", made = "yt.data.loader" },
  { mt = "yt.Conv2dPlan", obj = "plan", made = "yt.nn.conv2d_plan" },
}

-- The areas of yt.*: the file (src/lua/l_<area>.c) that registers each name, and a title.
M.AREAS = {
  core = "The module itself",
  tensor = "Tensors: creation, autograd, scopes, random numbers",
  bench = "Clocks and machine probes",
  io = "Files: YAML and safetensors",
  pt = "PyTorch .pt checkpoints",
  onnx = "ONNX writer",
  nn = "Layers as functions (each also a tensor method)",
  metrics = "NMS, metrics, plots and images",
  ops = "Tensor math, reductions and shapes (each also a tensor method, except cat)",
  loss = "Detection loss and box geometry",
  optim = "Optimizers (yt.optim), gradient clipping, EMA",
  data = "Data pipeline (yolotrain.data wraps it)",
  synth = "The embedded synthetic dataset",
  sys = "yt.sys: processes, files, signals and the REPL (docs/cli.md)",
  dist = "yt.dist: MPI collectives (docs/distributed.md)",
  other = "Registered elsewhere",
}
M.NAMESPACES = { sys = "sys", dist = "dist", optim = "optim" } -- yt.<name> tables of functions

-- The areas in src/lua/modules.def order, and the yt.<group> table each one's names are also in (or none).
local function area_groups()
  local order, group = {}, {}
  for name, g in read("src/lua/modules.def"):gmatch('YT_LUA_MODULE%(([%w_]+),%s*([%w_"]+)%)') do
    order[#order + 1] = name
    group[name] = g:match('^"([%w_]+)"$')
  end
  return order, group
end

-- The grouped name of yt.<k> when its area is grouped: yt.data.loader -> "data.loader" (see modules.def).
local function grouped_name(k, g)
  if not g then return nil end
  local short = k:sub(1, #g + 1) == g .. "_" and k:sub(#g + 2) or k
  return g .. "." .. short
end

local function area_files()
  local order = { "core" }
  for _, name in ipairs((area_groups())) do
    order[#order + 1] = name
  end
  local texts = {}
  for _, a in ipairs(order) do
    texts[a] = read(a == "core" and "src/lua/core.c" or ("src/lua/l_" .. a .. ".c"))
  end
  return order, texts
end

-- area of every yt.* name: the first file (in modules.def order) with a {"name", fn} entry, else one that
-- sets the field by name.
local function yt_areas()
  local order, texts = area_files()
  local area = {}
  for _, k in ipairs(sorted_keys(yt)) do
    if M.NAMESPACES[k] then
      area[k] = k
    else
      local pat = '{"' .. k .. '",'
      for _, a in ipairs(order) do
        if texts[a]:find(pat, 1, true) then
          area[k] = a
          break
        end
      end
      if not area[k] then
        for _, a in ipairs(order) do
          if texts[a]:find('"' .. k .. '")', 1, true) then
            area[k] = a
            break
          end
        end
      end
      area[k] = area[k] or "other"
    end
  end
  return area, order
end

local function tensor_mt()
  local mt = debug.getregistry()["yt.Tensor"]
  if not mt then error("gen_reference: yolotrain.core has no yt.Tensor metatable", 0) end
  return mt
end

-- yt.<name> whose value is fn (the module function a tensor method is), or nil.
local function yt_name_of(fn)
  for _, k in ipairs(sorted_keys(yt)) do
    if yt[k] == fn then return k end
  end
  return nil
end

-- The commands of the executable (src/cli/main.c's commands[]) and the modes of the front end.
function M.commands()
  local list = read("src/cli/main.c"):match("static const char %*const commands%[%]%s*=%s*(%b{})")
  if not list then
    error(
      "gen_reference: src/cli/main.c has no `static const char *const commands[] = {...}` list "
        .. "(update M.commands in scripts/gen_reference.lua)",
      0
    )
  end
  local out = {}
  for w in list:gmatch('"([^"]+)"') do
    out[#out + 1] = w
  end
  for _, m in ipairs(require("yolotrain.cfg").MODE_LIST) do
    out[#out + 1] = m
  end
  return out
end

-- Events and the classes whose files fire them (run_callbacks("event")).
local FIRES = {
  ["lua/yolotrain/engine/trainer.lua"] = "trainer",
  ["lua/yolotrain/engine/validator.lua"] = "validator",
  ["lua/yolotrain/engine/predictor.lua"] = "predictor",
  ["lua/yolotrain/engine/exporter.lua"] = "exporter",
}
local function fired_by()
  local by = {}
  for _, f in ipairs(lua_files()) do
    for ev in read(f):gmatch('run_callbacks%("([%w_]+)"%)') do
      by[ev] = by[ev] or {}
      local who = FIRES[f] or f
      local seen = false
      for _, w in ipairs(by[ev]) do
        seen = seen or w == who
      end
      if not seen then table.insert(by[ev], who) end
    end
  end
  return by
end

-- ---- the sections ----

local function events_section()
  local by = fired_by()
  local rows = {}
  for _, ev in ipairs(require("yolotrain.utils.callbacks").events) do
    local who = by[ev] and table.concat(by[ev], ", ") or "(never fired)"
    rows[#rows + 1] = { key = ev, cells = { code(ev), who, KEEP, KEEP } }
  end
  return { { header = { "event", "passed to the callback", "fires", "fresh at that point" }, rows = rows } }
end

local KIND_TEXT =
  { float = "number", fraction = "number 0..1", int = "integer", bool = "bool", str = "string", any = "any" }

local function default_text(d, v)
  if v == d.NONE then return "null" end
  if type(v) == "table" then return "[" .. table.concat(v, ", ") .. "]" end
  return tostring(v)
end

local function cfg_section()
  local d = require("yolotrain.cfg.default")
  local parts = {}
  for _, g in ipairs(d.groups) do
    local rows = {}
    for _, k in ipairs(g.keys) do
      local kind = KIND_TEXT[d.kinds[k]] or d.kinds[k]
      if d.minimum[k] then kind = kind .. " >= " .. tostring(d.minimum[k]) end
      rows[#rows + 1] = { key = k, cells = { code(k), code(default_text(d, d.values[k])), kind, plain(d.meanings[k]) } }
    end
    parts[#parts + 1] = { heading = "#### " .. g.title, header = { "key", "default", "type", "meaning" }, rows = rows }
  end
  return parts
end

-- The defaults as the file would show them to a user whose $XDG_DATA_HOME is unset and whose home is ~.
local function settings_section()
  local settings = require("yolotrain.utils.settings")
  local names = { "HOME", "XDG_DATA_HOME" }
  local saved = { os.getenv(names[1]), os.getenv(names[2]) }
  yt.sys.setenv("HOME", "~")
  yt.sys.setenv("XDG_DATA_HOME", nil)
  local rows = {}
  local ok, err = pcall(function()
    for _, s in ipairs(settings.SETTINGS) do
      rows[#rows + 1] = { key = s.key, cells = { code(s.key), code(tostring(s.default())), plain(s.meaning) } }
    end
  end)
  for i, k in ipairs(names) do
    yt.sys.setenv(k, saved[i])
  end
  if not ok then error(err, 0) end
  return { { header = { "setting", "default", "meaning" }, rows = rows } }
end

local function commands_section()
  local rows = {}
  for _, c in ipairs(M.commands()) do
    rows[#rows + 1] = { key = c, cells = { code(c), KEEP, KEEP } }
  end
  return { { header = { "command", "usage", "what it does" }, rows = rows } }
end

local function member_rows(spec, Cls)
  local rows = {}
  for _, e in ipairs(M.own_members(Cls)) do
    local k, v = e[1], e[2]
    local first
    if USAGE_META[k] then
      first = code(k) .. ": " .. code(USAGE_META[k](spec.obj, v))
    elseif k == "init" and type(v) == "function" and not spec.plain then
      first = code("init") .. ": " .. code(spec.name .. "(" .. args_of(v, true) .. ")")
    elseif type(v) == "function" then
      first = code(signature(spec.name, k, v))
    else
      first = code(spec.name .. "." .. k) .. " = " .. code(repr(v))
    end
    local desc = KEEP
    if type(v) == "function" then
      local _, src = M.params(v)
      if src and src:match("utils/callbacks%.lua$") then desc = "callback registry, see [Callbacks](#1-callbacks)" end
    end
    rows[#rows + 1] = { key = k, cells = { first, desc } }
  end
  return rows
end

local function class_section(spec)
  return function() return { { header = { "member", "what it does" }, rows = member_rows(spec, spec.get()) } } end
end

-- Attributes of spec's class, without those its ancestors' files already assign.
function M.class_attributes(spec)
  local var = spec.var or spec.name
  local found = spec.plain and M.scan_constructor_fields(spec.file, var) or M.scan_attributes(spec.file, var)
  if spec.extra_attrs then
    for k in pairs(spec.extra_attrs()) do
      found[k] = true
    end
  end
  local p = spec.parent and CLASS_BY_NAME[spec.parent]
  while p do
    for k in pairs(M.scan_attributes(p.file, p.var or p.name)) do
      found[k] = nil
    end
    p = p.parent and CLASS_BY_NAME[p.parent]
  end
  local Cls = spec.get()
  local out = {}
  for _, k in ipairs(sorted_keys(found)) do
    if not k:match("^_") and type(Cls[k]) ~= "function" then out[#out + 1] = k end
  end
  return out
end

local function attrs_section(spec)
  return function()
    local rows = {}
    for _, k in ipairs(M.class_attributes(spec)) do
      rows[#rows + 1] = { key = k, cells = { code(spec.obj .. "." .. k), KEEP } }
    end
    return {
      {
        header = { "attribute", "what it holds" },
        rows = rows,
        empty = "(none of its own beyond " .. tostring(spec.parent) .. "'s)",
      },
    }
  end
end

local function module_section(spec)
  return function()
    local mod = require(spec.name)
    local rows = {}
    for _, k in ipairs(sorted_keys(mod, function(k) return not k:match("^_") end)) do
      local v = mod[k]
      if not (spec.classes == false and class.is_class(v)) then
        local first
        if type(v) == "function" then
          first = code(signature(spec.short, k, v, true))
        elseif class.is_class(v) then
          first = code(spec.short .. "." .. k) .. " (class " .. tostring(rawget(v, "__name")) .. ")"
        else
          first = code(spec.short .. "." .. k)
        end
        rows[#rows + 1] = { key = k, cells = { first, KEEP } }
      end
    end
    return { { header = { "name", "what it is" }, rows = rows } }
  end
end

local function is_subclass(C, Parent)
  local p = rawget(C, "__parent")
  while p do
    if p == Parent then return true end
    p = rawget(p, "__parent")
  end
  return false
end

local function layers_section()
  local modules = require("yolotrain.nn.modules")
  local Module = require("yolotrain.nn.module")
  local rows = {}
  for _, k in ipairs(sorted_keys(modules)) do
    local C = modules[k]
    if class.is_class(C) and C ~= Module and is_subclass(C, Module) then
      local methods = {}
      for _, e in ipairs(M.own_members(C)) do
        if type(e[2]) == "function" and e[1] ~= "init" then methods[#methods + 1] = e[1] end
      end
      local init = rawget(C, "init")
      local ctor = init and (k .. "(" .. args_of(init, true) .. ")") or (k .. "()")
      local held = scan_registered("lua/yolotrain/nn/modules.lua", k)
      rows[#rows + 1] = {
        key = k,
        cells = {
          code(k),
          code(ctor),
          #methods > 0 and table.concat(methods, ", ") or "",
          #held > 0 and table.concat(held, ", ") or "-",
          KEEP,
        },
      }
      if rows[#rows].cells[3] == "" then rows[#rows].cells[3] = "-" end
    end
  end
  return { { header = { "class", "constructor", "methods", "holds", "what it is" }, rows = rows } }
end

local KIND_RULE = {
  conv = "args start with c2: c1 (the input channels) is put first, c2 scaled by the width multiple",
  ["repeat"] = "as conv, and the scaled repeat count n is inserted as the third argument",
  concat = "output channels: the sum of the inputs'",
  detect = "the list of input channels is appended to the args",
  passthrough = "output channels = input channels; args as written",
}

local function yaml_section()
  local modules = require("yolotrain.nn.modules")
  local rows = {}
  for _, k in ipairs(sorted_keys(modules.registry)) do
    local r = modules.registry[k]
    local rule = r.spec.channels and "spec.channels(c1, args) gives the output channels"
      or (KIND_RULE[r.spec.kind] or tostring(r.spec.kind))
    rows[#rows + 1] = {
      key = k,
      cells = {
        code(k),
        code(tostring(rawget(r.cls, "__name"))),
        code(r.spec.channels and "channels" or tostring(r.spec.kind)),
        rule,
      },
    }
  end
  return { { header = { "YAML name", "class", "kind", "arguments and channels" }, rows = rows } }
end

local function tensor_methods_section()
  local mt = tensor_mt()
  local rows = {}
  for _, k in ipairs(sorted_keys(mt.__methods)) do
    local fn = mt.__methods[k]
    local as = yt_name_of(fn)
    if as then
      rows[#rows + 1] = {
        key = k,
        cells = {
          code("t:" .. k .. "(…)"),
          string.format("`yt.%s(t, …)` as a method (see [yt.*](#6-tensors-and-yt))", as),
        },
      }
    else
      rows[#rows + 1] = { key = k, cells = { keep_or(code("t:" .. k .. "(…)")), KEEP } }
    end
  end
  return { { header = { "method", "what it does" }, rows = rows } }
end

local HIDDEN_META = { __methods = true, __name = true, __gc = true }

local function tensor_meta_section()
  local mt = tensor_mt()
  local rows = {}
  for _, k in ipairs(sorted_keys(mt, function(k) return k:match("^__") and not HIDDEN_META[k] end)) do
    rows[#rows + 1] = { key = k, cells = { code(k), KEEP, KEEP } }
  end
  return { { header = { "metamethod", "usage", "what it does" }, rows = rows } }
end

-- The fields of a tensor: the names l_tensor.c's __index / __newindex compare the key with.
function M.tensor_fields()
  local found = {}
  for k in read("src/lua/l_tensor.c"):gmatch('strcmp%(k, "([%w_]+)"%)') do
    found[k] = true
  end
  return sorted_keys(found)
end

local function tensor_fields_section()
  local rows = {}
  for _, k in ipairs(M.tensor_fields()) do
    rows[#rows + 1] = { key = k, cells = { code("t." .. k), KEEP } }
  end
  return { { header = { "field", "what it is" }, rows = rows } }
end

local function yt_row(full, v)
  local default = type(v) == "function" and code(full .. "(…)") or code(full)
  return { key = full, cells = { keep_or(default), KEEP } }
end

local function yt_section()
  local area, order = yt_areas()
  local _, group_of = area_groups()
  local is_group, aliased = {}, {}
  for _, g in pairs(group_of) do
    is_group[g] = true
  end
  local groups = {}
  for _, k in ipairs(sorted_keys(yt)) do
    local a = area[k]
    local grouped = k ~= group_of[a] and grouped_name(k, group_of[a])
    if grouped then
      aliased[grouped] = true
      groups[a] = groups[a] or {}
      table.insert(groups[a], yt_row("yt." .. grouped, yt[k]))
    end
  end
  for _, k in ipairs(sorted_keys(yt)) do
    local a = area[k]
    if M.NAMESPACES[k] then
      groups[a] = groups[a] or {}
      for _, f in ipairs(sorted_keys(yt[k])) do
        if not aliased[k .. "." .. f] then table.insert(groups[a], yt_row("yt." .. k .. "." .. f, yt[k][f])) end
      end
    elseif not group_of[a] and not is_group[k] then
      groups[a] = groups[a] or {}
      table.insert(groups[a], yt_row("yt." .. k, yt[k]))
    end
  end
  for _, rows in pairs(groups) do
    table.sort(rows, function(x, y) return x.key < y.key end)
  end
  local parts = {}
  local names = {}
  for _, a in ipairs(order) do
    names[#names + 1] = a
  end
  for _, ns in ipairs({ "sys", "dist", "other" }) do
    local seen = false
    for _, a in ipairs(names) do
      seen = seen or a == ns
    end
    if not seen then names[#names + 1] = ns end
  end
  for _, a in ipairs(names) do
    if groups[a] then
      local file = a == "core" and "src/lua/core.c" or (a == "other" and "?" or ("src/lua/l_" .. a .. ".c"))
      local text = "From " .. code(file) .. "."
      if group_of[a] then
        text = text
          .. string.format(
            " Each is also at the top of the module under its old name (`yt.%s.x` is "
              .. "`yt.%s_x` or `yt.x`), kept for one release.",
            group_of[a],
            group_of[a]
          )
      end
      parts[#parts + 1] = {
        heading = "#### " .. (M.AREAS[a] or a),
        text = text,
        header = { "function", "what it does" },
        rows = groups[a],
      }
    end
  end
  return parts
end

local function userdata_section(spec)
  return function()
    local mt = debug.getregistry()[spec.mt]
    if not mt then error("gen_reference: no metatable " .. spec.mt, 0) end
    local methods = type(mt.__index) == "table" and mt.__index or mt.__methods or {}
    local rows = {}
    for _, k in ipairs(sorted_keys(methods)) do
      rows[#rows + 1] = { key = k, cells = { keep_or(code(spec.obj .. ":" .. k .. "(…)")), KEEP } }
    end
    for _, k in ipairs({ "__len", "__close", "__tostring" }) do
      if mt[k] then rows[#rows + 1] = { key = k, cells = { code(k), KEEP } } end
    end
    return {
      {
        header = { "method", "what it does" },
        rows = rows,
        text = string.format("`%s` returns one (metatable `%s`).", spec.made, spec.mt),
      },
    }
  end
end

-- Every section: name, what a row of it is (for messages), where the names come from, whether row names are
-- full dotted names, and the function that builds its parts.
function M.section_specs()
  local specs = {
    { name = "events", what = "callback event", source = "lua/yolotrain/utils/callbacks.lua", build = events_section },
    { name = "cfg", what = "argument (key=value)", source = "lua/yolotrain/cfg/default.lua", build = cfg_section },
    { name = "settings", what = "user setting", source = "lua/yolotrain/utils/settings.lua", build = settings_section },
    {
      name = "commands",
      what = "yolotrain command",
      source = "src/cli/main.c (commands[]) and cfg.MODE_LIST",
      build = commands_section,
    },
  }
  for _, c in ipairs(M.CLASSES) do
    specs[#specs + 1] =
      { name = "class:" .. c.name, what = c.name .. " member", source = c.file, build = class_section(c) }
    if c.attrs ~= false then
      specs[#specs + 1] =
        { name = "attrs:" .. c.name, what = c.name .. " attribute", source = c.file, build = attrs_section(c) }
    end
  end
  for _, m in ipairs(M.MODULES) do
    specs[#specs + 1] =
      { name = "module:" .. m.name, what = m.name .. " name", source = m.name, build = module_section(m) }
  end
  specs[#specs + 1] =
    { name = "layers", what = "layer class", source = "lua/yolotrain/nn/modules.lua", build = layers_section }
  specs[#specs + 1] = {
    name = "yaml",
    what = "model YAML module",
    source = "lua/yolotrain/nn/modules.lua registry",
    build = yaml_section,
  }
  specs[#specs + 1] = {
    name = "tensor:methods",
    what = "tensor method",
    source = "yt.Tensor metatable (src/lua)",
    build = tensor_methods_section,
  }
  specs[#specs + 1] =
    { name = "tensor:fields", what = "tensor field", source = "src/lua/l_tensor.c", build = tensor_fields_section }
  specs[#specs + 1] =
    { name = "tensor:meta", what = "tensor metamethod", source = "yt.Tensor metatable", build = tensor_meta_section }
  specs[#specs + 1] = {
    name = "yt",
    what = "yt.* function or value",
    source = "require('yolotrain.core')",
    full = true,
    build = yt_section,
  }
  for _, u in ipairs(M.USERDATA) do
    specs[#specs + 1] = {
      name = "udata:" .. u.mt,
      what = u.mt .. " method",
      source = u.mt .. " metatable",
      build = userdata_section(u),
    }
  end
  return specs
end

-- The names a section must list (from the code) and the names the document lists in it.
function M.expected_keys(spec)
  local keys = {}
  for _, part in ipairs(spec.build()) do
    for _, row in ipairs(part.rows) do
      keys[#keys + 1] = row.key
    end
  end
  return keys
end

-- ---- updating the document ----

-- The document with every generated section rewritten; and a report { added, removed, unknown, missing,
-- undocumented }.
function M.update(text)
  local report = { added = {}, removed = {}, unknown = {}, missing = {}, undocumented = {} }
  local specs, by_name = M.section_specs(), {}
  for _, s in ipairs(specs) do
    by_name[s.name] = s
  end
  local present = {}
  local out, pos = {}, 1
  for _, sec in ipairs(M.sections(text)) do
    out[#out + 1] = text:sub(pos, sec.s - 1)
    local spec = by_name[sec.name]
    if not spec then
      report.unknown[#report.unknown + 1] = sec.name
      out[#out + 1] = text:sub(sec.s, sec.e)
    else
      present[sec.name] = true
      local old_rows, old = M.parse_rows(sec.body, spec.full)
      local parts = spec.build()
      local body = render({ name = sec.name, parts = parts }, old, report)
      local now = {}
      for _, part in ipairs(parts) do
        for _, r in ipairs(part.rows) do
          now[r.key] = true
        end
      end
      for _, r in ipairs(old_rows) do
        if not now[r.key] then report.removed[#report.removed + 1] = sec.name .. ": " .. r.key end
      end
      out[#out + 1] = BEGIN .. sec.name .. " -->\n" .. body .. END .. sec.name .. " -->"
    end
    pos = sec.e + 1
  end
  out[#out + 1] = text:sub(pos)
  for _, s in ipairs(specs) do
    if not present[s.name] then report.missing[#report.missing + 1] = s.name end
  end
  local new = table.concat(out)
  for _, sec in ipairs(M.sections(new)) do
    local rows = M.parse_rows(sec.body, by_name[sec.name] and by_name[sec.name].full)
    for _, r in ipairs(rows) do
      for _, c in ipairs(r.cells) do
        if c:find(M.UNDOC, 1, true) then
          report.undocumented[#report.undocumented + 1] = sec.name .. ": " .. r.key
          break
        end
      end
    end
  end
  return new, report
end

function M.load() return read(M.DOC) end

local function main(argv)
  local check = argv[1] == "--check"
  local text = M.load()
  local new, report = M.update(text)
  local function list(title, t)
    if #t > 0 then io.stdout:write(title, ":\n  ", table.concat(t, "\n  "), "\n") end
  end
  list("added (describe them)", report.added)
  list("removed", report.removed)
  list("sections the generator does not know (left as they are)", report.unknown)
  list(
    "sections missing from "
      .. M.DOC
      .. " (add `"
      .. BEGIN
      .. "NAME -->` and `"
      .. END
      .. "NAME -->` where each belongs)",
    report.missing
  )
  list("still UNDOCUMENTED", report.undocumented)
  if check then
    if new ~= text or #report.missing > 0 or #report.unknown > 0 then
      io.stdout:write(M.DOC, " is not current: run build/yolotrain scripts/gen_reference.lua\n")
      return 1
    end
    io.stdout:write(M.DOC, " is current\n")
    return #report.undocumented > 0 and 1 or 0
  end
  if new ~= text then
    local tmp = M.ROOT .. M.DOC .. ".tmp"
    local f = assert(io.open(tmp, "wb"))
    f:write(new)
    f:close()
    assert(os.rename(tmp, M.ROOT .. M.DOC))
    io.stdout:write("wrote ", M.DOC, "\n")
  else
    io.stdout:write(M.DOC, " is current\n")
  end
  return 0
end

if arg and arg[0] and arg[0]:match("gen_reference%.lua$") then os.exit(main(arg)) end

return M
