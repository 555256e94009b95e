-- The command line front end: `yolotrain [detect] train|val|predict key=value ...` (Ultralytics' `yolo` grammar).
-- The executable calls main(words) with every word after the program name and exits with its return value.
--
--   yolotrain detect train data=coco128.yaml model=yolov8n.yaml epochs=3 imgsz=320
--   yolotrain detect val model=runs/detect/train/weights/best.safetensors data=coco128.yaml imgsz=320
--   yolotrain detect val model=yolov8n.yaml pretrained=yolov8n.safetensors data=coco128.yaml
--   yolotrain detect predict model=best.safetensors source=images/ conf=0.25 save_txt=true
local cfgmod = require("yolotrain.cfg")
local errors = require("yolotrain.utils.errors")

local M = {}

local OTHER_TASKS = { segment = true, classify = true, pose = true, obb = true }
local OTHER_MODES = { track = true, benchmark = true }

M.USAGE = [[
Usage: yolotrain [TASK] MODE key=value ...

  TASK  detect (the default; the only task yolotrain implements)
  MODE  train | val | predict | export (format=onnx, or format=safetensors from a .pt)
  also  yolotrain help | version | checks (this machine: versions, threads, CPU) | cfg (every argument)
        yolotrain settings [key=value ...] [reset]   (datasets_dir, weights_dir, runs_dir, tensorboard: docs/cli.md)
        yolotrain attach [RUN_DIR | PID]   (a REPL into a running training, the newest when omitted: docs/cli.md)

Examples:
  yolotrain detect train data=coco128.yaml model=yolov8n.yaml epochs=3 imgsz=320
  yolotrain detect val model=runs/detect/train/weights/best.safetensors data=coco128.yaml imgsz=320
  yolotrain detect val model=yolov8n.yaml pretrained=yolov8n.safetensors data=coco128.yaml
  yolotrain detect predict model=best.safetensors source=path/to/images save_txt=true
  yolotrain detect train data=coco128.yaml model=yolov8n.pt epochs=3      (Ultralytics weights, read as data)
  yolotrain detect export model=best.safetensors format=onnx imgsz=640

Arguments are Ultralytics' (see docs/reference.md): `key=value`, `key = value`, true/false/none, numbers and
[lists]; a bare boolean key means true. `yolotrain cfg` prints every argument with its default and meaning.]]

local function err_out(msg)
  io.stderr:write("yolotrain: ", tostring(msg), "\n")
  io.stderr:flush()
  return 1
end

-- Every argument as YAML (key: default), its meaning as a comment, under a comment naming its group.
local function print_cfg()
  local d = cfgmod.defaults
  for i, g in ipairs(d.groups) do
    io.stdout:write(i > 1 and "\n" or "", "# ", g.title, "\n")
    for _, k in ipairs(g.keys) do
      local v = d.values[k]
      local s
      if v == d.NONE then s = "null"
      elseif type(v) == "table" then s = "[" .. table.concat(v, ", ") .. "]"
      else s = tostring(v) end
      io.stdout:write(k, ": ", s, "  # ", d.meanings[k], "\n")
    end
  end
end

-- An error value as one message (tables with a message field, strings as they are).
local function message_of(e)
  if type(e) == "table" then
    if e.message then return tostring(e.message) end
    local mt = getmetatable(e)
    if mt and mt.__tostring then return tostring(e) end
    return "(error object is a table value)"
  end
  return tostring(e)
end

function M.run(task, mode, overrides)
  local detect = require("yolotrain.models.yolo.detect")
  overrides.task = task
  overrides.mode = mode
  if mode == "val" or mode == "predict" then
    -- as Ultralytics: the weights' training imgsz (and for val its data and single_cls) unless given here
    local checkpoint = require("yolotrain.engine.checkpoint")
    local inherited = checkpoint.inherited_args(overrides.model)
    local taken = {}
    for _, k in ipairs(checkpoint.INHERITED_ARGS) do
      if overrides[k] == nil and inherited[k] ~= nil and (mode == "val" or k == "imgsz") then
        overrides[k] = inherited[k]
        taken[#taken + 1] = string.format("%s=%s", k, require("yolotrain.utils").repr(inherited[k]))
      end
    end
    if #taken > 0 then
      io.stdout:write(string.format("%s: %s from the training arguments of %s\n", mode, table.concat(taken, ", "),
        tostring(overrides.model)))
      io.stdout:flush()
    end
  end
  if mode == "train" then
    if overrides.model == nil and not overrides.resume then
      overrides.model = "yolov8n.yaml"
      io.stdout:write("WARNING: 'model' argument is missing. Using default 'model=yolov8n.yaml'.\n")
    end
    local trainer = detect.Detection_Trainer{ overrides = overrides }
    trainer:train()
    return 0
  elseif mode == "val" then
    if overrides.model == nil then
      error("'model' argument is missing: give model=<checkpoint.safetensors> or model=<model.yaml> " ..
        "pretrained=<weights.safetensors>", 0)
    end
    local validator = detect.Detection_Validator{ args = overrides }
    validator(nil, overrides.model)
    return 0
  elseif mode == "predict" then
    if overrides.model == nil then
      error("'model' argument is missing: give model=<checkpoint.safetensors> or model=<model.yaml> " ..
        "pretrained=<weights.safetensors>", 0)
    end
    if overrides.source == nil then
      error("'source' argument is missing: give source=<image, folder, glob or .txt list>", 0)
    end
    local predictor = detect.Detection_Predictor{ overrides = overrides }
    predictor:predict_cli(overrides.source)
    return 0
  elseif mode == "export" then
    if overrides.model == nil then
      error("'model' argument is missing: give model=<weights.safetensors> or model=<weights.pt>", 0)
    end
    require("yolotrain.engine.exporter").export(overrides)
    return 0
  end
  error(string.format("mode '%s' is not supported", tostring(mode)), 0)
end

-- ---- attach ----

-- The live attach sockets under the runs folder (depth <= 4), newest first: { {path =, mtime =}, ... }.
local function live_sockets(root)
  local yt = require("yolotrain.core")
  local utils = require("yolotrain.utils")
  local name = require("yolotrain.engine.attach").SOCKET_NAME
  local found = {}
  local function walk(dir, depth)
    if depth > 4 then return end
    for _, n in ipairs(yt.sys.listdir(dir) or {}) do
      local p = utils.join(dir, n)
      local st = yt.sys.stat(p)
      if st and st.is_dir then walk(p, depth + 1)
      elseif st and n == name and yt.control.peer_pid(p) then found[#found + 1] = { path = p, mtime = st.mtime } end
    end
  end
  if utils.is_dir(root) then walk(root, 0) end
  table.sort(found, function(a, b) return a.mtime > b.mtime end)
  return found
end

-- `yolotrain attach [RUN_DIR | PID]`: the socket to attach to, or raises saying why there is none.
function M.attach_target(target)
  local yt = require("yolotrain.core")
  local utils = require("yolotrain.utils")
  local attach = require("yolotrain.engine.attach")
  local root = require("yolotrain.utils.settings").get("runs_dir")
  if target == nil then
    local list = live_sockets(root)
    if #list == 0 then error(string.format("no running training serves an attach socket under %s", root), 0) end
    return list[1].path
  end
  local pid = target:match("^%d+$") and math.tointeger(tonumber(target))
  if pid then
    for _, s in ipairs(live_sockets(root)) do
      if yt.control.peer_pid(s.path) == pid then return s.path end
    end
    error(string.format("process %d serves no attach socket under %s (give its run directory instead)", pid, root), 0)
  end
  local st = yt.sys.stat(target)
  if st and st.is_dir then return attach.socket_path(target) end
  if st then return target end
  error(string.format("attach %s: no such run directory or socket", target), 0)
end

local function run_attach(words)
  if #words > 2 then return err_out("usage: yolotrain attach [RUN_DIR | PID]") end
  local ok, path = pcall(M.attach_target, words[2])
  if not ok then return err_out(message_of(path)) end
  return require("yolotrain.core").control.attach(path)
end

-- main(words) -> exit status
function M.main(words)
  words = words or {}
  local first = words[1]
  if first == nil or first == "help" or first == "--help" or first == "-h" or
      (#words == 2 and OTHER_TASKS[first] == nil and words[2] == "help") then
    io.stdout:write(M.USAGE, "\n")
    return first == nil and 1 or 0
  end
  if first == "cfg" and #words == 1 then
    print_cfg()
    return 0
  end
  if first == "checks" and #words == 1 then
    require("yolotrain.utils.checks").print_checks()
    return 0
  end
  if first == "settings" then
    local ok, res = pcall(require("yolotrain.utils.settings").cli, words)
    if not ok then return err_out(message_of(res)) end
    return res
  end
  if first == "attach" then return run_attach(words) end
  if first == "version" and #words == 1 then
    local ok, yt = pcall(require, "yolotrain.core")
    io.stdout:write(ok and tostring(yt.version) or "unknown", "\n")
    return 0
  end
  for _, w in ipairs(words) do
    if OTHER_TASKS[w] then
      return err_out(string.format("task '%s' is not supported: yolotrain implements the detect task only", w))
    end
    if OTHER_MODES[w] then
      return err_out(string.format("mode '%s' is not supported: yolotrain implements %s", w,
        table.concat(cfgmod.MODE_LIST, ", ")))
    end
  end
  local ok, task, mode, overrides = pcall(cfgmod.parse_args, words)
  if not ok then return err_out(message_of(task)) end
  local cok, with_file = pcall(cfgmod.apply_cfg_file, overrides)
  if not cok then return err_out(message_of(with_file)) end
  overrides = with_file
  task = task or overrides.task or "detect"
  mode = mode or overrides.mode
  if mode == nil then
    mode = "train"
    io.stdout:write(string.format("WARNING: 'mode' argument is missing. Valid modes are %s. " ..
      "Using default 'mode=train'.\n", table.concat(cfgmod.MODE_LIST, ", ")))
  end
  if not cfgmod.MODES[mode] then
    return err_out(string.format("invalid mode '%s': valid modes are %s", tostring(mode),
      table.concat(cfgmod.MODE_LIST, ", ")))
  end
  if not cfgmod.TASKS[task] then
    return err_out(string.format("invalid task '%s': yolotrain implements the detect task only", tostring(task)))
  end
  local rok, res = pcall(M.run, task, mode, overrides)
  -- a training stopped by a signal or stop(): the executable prints its line and exits with its status
  if not rok and errors.is_report(res) and res.exit_status ~= 1 then error(res, 0) end
  if not rok then return err_out(message_of(res)) end
  return res
end

return M
