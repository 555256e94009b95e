-- docs/reference.md lists exactly what the code has: every callback event, argument, user setting, command,
-- member of the engine classes, Module and layers, tensor method and yt.* function; and nothing that is gone.
-- The names come from scripts/gen_reference.lua's introspection of the code (the same the generator writes from).
local helpers = require("helpers")

local gen = dofile(helpers.repo_dir .. "scripts/gen_reference.lua")
local FIX = "\n(run `build/yolotrain scripts/gen_reference.lua`, then describe what it added in docs/reference.md)"

local ENGINE = { Object = true, Engine_Trainer = true, Detection_Trainer = true, Optimizer = true, ModelEMA = true,
  Engine_Validator = true, Detection_Validator = true, Engine_Predictor = true, Detection_Predictor = true,
  Results = true, Boxes = true, Exporter = true }
local NN = { Module = true, Detection_Model = true, v8DetectionLoss = true, Graph = true }
local DATA = { Base_Dataset = true, YOLO_Dataset = true, Loader = true, Metric = true, DetMetrics = true,
  ["yt.DataDataset"] = true, ["yt.DataLoader"] = true }

-- The category of a section (every section has one: see the last test of the first block).
local function category(name)
  local kind, what = name:match("^([%w_]+):(.+)$")
  if not kind then
    if name == "events" then return "events" end
    if name == "cfg" then return "cfg" end
    if name == "settings" then return "settings" end
    if name == "commands" then return "commands" end
    if name == "layers" or name == "yaml" then return "nn" end
    if name == "yt" then return "yt" end
    return nil
  end
  if kind == "class" or kind == "attrs" then
    if ENGINE[what] then return "engine" end
    if NN[what] then return "nn" end
    if DATA[what] then return "data" end
  elseif kind == "module" then
    if what == "yolotrain.data" then return "data" end
    if what:match("^yolotrain%.nn%.") or what == "yolotrain.utils.loss" or what == "yolotrain.utils.onnx" then
      return "nn"
    end
    return "modules"
  elseif kind == "tensor" then
    return "tensor"
  elseif kind == "udata" then
    return DATA[what] and "data" or "yt"
  end
  return nil
end

local text = gen.load()
local specs = gen.section_specs()
local sections = {}
for _, s in ipairs(gen.sections(text)) do sections[s.name] = s end

-- Every difference between the names the code has and the names docs/reference.md lists, in sections of `cat`.
local function problems_of(cat)
  local out = {}
  for _, spec in ipairs(specs) do
    if category(spec.name) == cat then
      local sec = sections[spec.name]
      if not sec then
        out[#out + 1] = string.format("docs/reference.md has no section '%s' (%ss of %s): add " ..
          "`<!-- generated:%s -->` and `<!-- /generated:%s -->` where it belongs", spec.name, spec.what, spec.source,
          spec.name, spec.name)
      else
        local rows = gen.parse_rows(sec.body, spec.full)
        local listed, expected = {}, {}
        for _, r in ipairs(rows) do listed[r.key] = r end
        for _, k in ipairs(gen.expected_keys(spec)) do
          expected[k] = true
          if not listed[k] then
            out[#out + 1] = string.format("%s '%s' exists in code (%s) but docs/reference.md does not list it",
              spec.what, k, spec.source)
          end
        end
        for _, r in ipairs(rows) do
          if not expected[r.key] then
            out[#out + 1] = string.format("docs/reference.md lists %s '%s', which no longer exists in %s", spec.what,
              r.key, spec.source)
          else
            for _, c in ipairs(r.cells) do
              if c:find(gen.UNDOC, 1, true) or c == "" then
                out[#out + 1] = string.format("%s '%s' is UNDOCUMENTED in docs/reference.md", spec.what, r.key)
                break
              end
            end
          end
        end
      end
    end
  end
  return out
end

local function assert_complete(cat)
  local p = problems_of(cat)
  assert(#p == 0, "\n" .. table.concat(p, "\n") .. FIX)
end

describe("docs/reference.md", function()
  it("lists every callback event, with what it receives and when it fires", function() assert_complete("events") end)

  it("lists every key=value argument, each with a meaning in cfg/default.lua", function()
    local d = require("yolotrain.cfg.default")
    local missing = {}
    for _, k in ipairs(d.order) do
      if type(d.meanings[k]) ~= "string" or d.meanings[k] == "" then missing[#missing + 1] = k end
    end
    assert(#missing == 0, "arguments without a meaning in lua/yolotrain/cfg/default.lua: " ..
      table.concat(missing, ", "))
    assert_complete("cfg")
  end)

  it("lists every user setting", function() assert_complete("settings") end)

  it("lists every yolotrain command", function() assert_complete("commands") end)

  it("lists every method and attribute of the trainer, validator, predictor and exporter classes", function()
    assert_complete("engine")
  end)

  it("lists the functions of the engine's modules (cfg, settings, callbacks, ...)", function()
    assert_complete("modules")
  end)

  it("lists the loader's, the dataset classes' and the metrics classes' API", function() assert_complete("data") end)

  it("lists Module's members, every layer class and YAML module, Detection_Model, the loss and the ONNX graph",
    function() assert_complete("nn") end)

  it("lists every tensor method, field and metamethod", function() assert_complete("tensor") end)

  it("lists every yt.* function and value and the methods of the C objects", function() assert_complete("yt") end)

  it("has a category here for every section the generator writes, and no section it does not know", function()
    local known = {}
    for _, spec in ipairs(specs) do
      known[spec.name] = true
      assert(category(spec.name), "section '" .. spec.name .. "' has no category in tests/lua/reference_spec.lua")
    end
    for name in pairs(sections) do
      assert(known[name], "docs/reference.md has a section '" .. name .. "' scripts/gen_reference.lua does not know")
    end
  end)

  it("says what the code says in its generated cells (defaults, meanings, signatures)", function()
    local new = gen.update(text)
    if new == text then return end
    local now = {}
    for _, s in ipairs(gen.sections(new)) do now[s.name] = s.body end
    local stale = {}
    for _, s in ipairs(gen.sections(text)) do
      if now[s.name] ~= s.body then stale[#stale + 1] = s.name end
    end
    error("stale sections of docs/reference.md: " .. table.concat(stale, ", ") .. FIX, 0)
  end)
end)

describe("README.md", function()
  it("says which call starts training and links docs/reference.md", function()
    local readme = helpers.read_file(helpers.repo_dir .. "README.md")
    assert.truthy(readme:find("(docs/reference.md)", 1, true), "README.md does not link docs/reference.md")
    assert.truthy(readme:find("A recipe calls `trainer:train()`", 1, true),
      "README.md does not say which of trainer:train() and trainer:DDP_or_normally_train() a recipe calls")
  end)
end)
