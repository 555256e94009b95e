-- `yolotrain checks`: what this machine gives a training, as Ultralytics' `yolo checks` prints its environment.
local yt = require("yolotrain.core")

local M = {}

-- The CPU's model name and the instruction-set features the kernels can use, from /proc/cpuinfo (Linux).
function M.cpu()
  local f = io.open("/proc/cpuinfo", "r")
  if not f then return { model = "unknown", features = {} } end
  local text = f:read("a")
  f:close()
  local model = text:match("model name%s*:%s*([^\n]+)") or "unknown"
  local flags = " " .. (text:match("\nflags%s*:%s*([^\n]+)") or "") .. " "
  local features = {}
  for _, flag in ipairs({ "avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16" }) do
    if flags:find(" " .. flag .. " ", 1, true) then features[#features + 1] = flag end
  end
  return { model = model, features = features }
end

-- Which convolution backend runs (YT_CONV, else the default for oneDNN's instruction set), or why none can.
function M.conv_backend()
  local ok, b, isa = pcall(yt.sys.conv_backend)
  if not ok then return tostring(b) end
  local what = {
    gemm = "im2col + OpenBLAS",
    dnnl = "k x k backward on oneDNN, the rest im2col + OpenBLAS",
    dnnl_all = "oneDNN",
  }
  local set = yt.sys.getenv("YT_CONV")
  if set and set ~= "" then return string.format("%s (YT_CONV=%s; oneDNN ISA %s)", what[b] or b, set, isa) end
  return string.format("%s (%s, the default on oneDNN ISA %s; YT_CONV: gemm, dnnl or dnnl_all)", what[b] or b, b, isa)
end

-- What amp=true trains in here (oneDNN's effective ISA decides), and what inference runs in.
function M.precision()
  local isa, bf16 = yt.sys.cpu_isa()
  if bf16 then return string.format("amp=true trains in bf16 mixed precision (%s); inference float32", isa) end
  return string.format(
    "float32 training and inference (no BF16 instructions, oneDNN ISA %s: amp=true runs float32)",
    isa
  )
end

-- The folder the engine's Lua files are loaded from: an installed tree, a checkout's lua/ or $YOLOTRAIN_LUA_PATH.
function M.engine_dir()
  local dir = debug.getinfo(1, "S").source:match("^@(.-)/?yolotrain/utils/checks%.lua$")
  if dir == nil then return "unknown" end
  return require("yolotrain.utils").absolute(dir == "" and "." or dir)
end

-- One {label, value} row per fact.
function M.rows()
  local cpu = M.cpu()
  local threads = yt.sys.get_num_threads()
  return {
    { "yolotrain", tostring(yt.version) },
    { "Lua", _VERSION },
    { "engine", M.engine_dir() },
    { "CPU", string.format("%s, %d cores", cpu.model, yt.sys.nproc()) },
    { "CPU features", #cpu.features > 0 and table.concat(cpu.features, " ") or "none of avx2/avx512" },
    {
      "threads",
      string.format(
        "%d (OpenMP and OpenBLAS; OMP_NUM_THREADS=%s)",
        threads,
        tostring(yt.sys.getenv("OMP_NUM_THREADS") or "unset")
      ),
    },
    { "precision", M.precision() },
    { "convolutions", M.conv_backend() },
    { "weights", "safetensors; Ultralytics .pt read as data; ONNX export" },
    { "RAM in use", string.format("%.1f MB RSS", (yt.sys.rss() or 0) / 1e6) },
  }
end

function M.print_checks()
  for _, r in ipairs(M.rows()) do
    io.stdout:write(string.format("%-14s %s\n", r[1], r[2]))
  end
end

return M
