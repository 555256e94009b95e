-- Train, export to ONNX, run the exported file in onnxruntime: the way from a training to a deployment.
--   build/yolotrain recipes/export_onnx.lua [key=value ...]      e.g. model=yolov8n.pt data=coco128.yaml epochs=3
-- The default trains YOLOv8n briefly on the embedded "shapes" dataset, exports best.safetensors as best.onnx
-- (imgsz=160, opset 17) and, when onnxruntime is installed (YT_TEST_DEPS=1 bash scripts/setup.sh puts it in
-- tests/onnx), runs both on one image tensor and prints how far they are apart.
local yt = require("yolotrain.core")
local cfg = require("yolotrain.cfg")
local detect = require("yolotrain.models.yolo.detect")
local Exporter = require("yolotrain.engine.exporter")
local tasks = require("yolotrain.nn.tasks")
local here = (debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./") .. "../" -- the repository

local overrides = cfg.recipe_overrides({
  model = "yolov8n.yaml",
  data = "shapes",
  epochs = 3,
  imgsz = 160,
  batch = 16,
  nbs = 16,
  name = "export_onnx",
  plots = false,
}, arg)

-- 1. train
local trainer = detect.Detection_Trainer { overrides = overrides }
trainer:train()

-- 2. export: best.onnx beside best.safetensors (opset=, dynamic=, batch= as on the command line)
local exporter = Exporter { overrides = { format = "onnx", imgsz = overrides.imgsz } }
exporter:add_callback("on_export_end", function(e) print("export_onnx: wrote " .. e.file) end)
local onnx_file = exporter(trainer.best)

-- 3. run it in onnxruntime and compare with yolotrain's own forward of the same weights
local runner = here .. "tests/onnx/run_ort.js"
if not yt.sys.stat(here .. "tests/onnx/node_modules/onnxruntime-node") then
  print(
    string.format(
      "export_onnx: onnxruntime is not installed; to run the file: YT_TEST_DEPS=1 bash "
        .. "scripts/setup.sh, then node %s %s images.safetensors out.safetensors",
      runner,
      onnx_file
    )
  )
  return
end
local size = overrides.imgsz
yt.manual_seed(0)
local images = yt.rand({ 1, 3, size, size })
local io_dir = trainer.save_dir
yt.io.save_safetensors(io_dir .. "/images.safetensors", { images = images })
local cmd =
  string.format("node '%s' '%s' '%s/images.safetensors' '%s/ort.safetensors'", runner, onnx_file, io_dir, io_dir)
assert(os.execute(cmd), "onnxruntime failed: " .. cmd)
local ort = yt.io.load_safetensors(io_dir .. "/ort.safetensors").output0
local model = tasks.load_checkpoint_model(trainer.best)
model:eval()
model:fuse()
local prev = yt.set_grad_enabled(false)
local own = model(images)
yt.set_grad_enabled(prev)
local nc = own:shape(2) - 4
print(
  string.format(
    "export_onnx: onnxruntime vs yolotrain on %dx%d: boxes differ by %.2g px, class " .. "probabilities by %.2g",
    size,
    size,
    (ort:narrow(2, 1, 4) - own:narrow(2, 1, 4)):abs():max():item(),
    (ort:narrow(2, 5, nc) - own:narrow(2, 5, nc)):abs():max():item()
  )
)
