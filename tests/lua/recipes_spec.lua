-- Every recipe in recipes/ runs (with small settings) through the yolotrain executable and does what it says.
local yt = require("yolotrain.core")
local helpers = require("helpers")

local EXE, REPO = helpers.yolotrain, helpers.repo_dir
local SMALL = "epochs=1 imgsz=64 batch=8 workers=1 fraction=0.1 plots=false"

local function run_recipe(name, args)
  local dir = helpers.tmpdir()
  local ok, rc, out = helpers.run(
    string.format("cd '%s' && '%s' '%srecipes/%s' %s project='%s/runs'", dir, EXE, REPO, name, args or SMALL, dir)
  )
  return ok, out, dir
end

describe("recipes", function()
  it("train_detection.lua trains and reports the weights from its callback", function()
    local ok, out, dir = run_recipe("train_detection.lua")
    assert(ok, out)
    assert.matches("epoch 1 done; latest weights: .*last%.safetensors", out)
    assert.matches("best%.safetensors", out)
  end)

  it("custom_trainer.lua builds its model through the build_model override", function()
    local ok, out = run_recipe("custom_trainer.lua")
    assert(ok, out)
    assert.matches("CustomTrainer.build_model: %d+ layers", out)
  end)

  it("custom_model_loss.lua trains with its own loss class", function()
    local ok, out = run_recipe("custom_model_loss.lua")
    assert(ok, out)
    assert.matches("custom loss: last penalty", out, 1, true)
  end)

  it("custom_dataloader.lua trains on the labels its Dataset subclass keeps and remaps", function()
    local ok, out = run_recipe("custom_dataloader.lua")
    assert(ok, out)
    local kept, all = out:match("custom_dataloader: training on (%d+) of (%d+) images")
    assert.is_truthy(kept, out)
    assert.is_true(tonumber(kept) > 0 and tonumber(kept) < tonumber(all), out)
    -- the loader's dataset is the subclass, with the filtered images and no class 3 left
    assert.matches("custom_dataloader: " .. kept .. " training images, 0 labels of class 3 left", out, 1, true)
  end)

  it("custom_module.lua trains a model with a Lua-defined layer from the YAML", function()
    local ok, out = run_recipe("custom_module.lua")
    assert(ok, out)
    assert.matches("custom_module: Scale weights after training", out, 1, true)
  end)

  it("upload_weights.lua uploads complete checkpoints every N epochs", function()
    local dest = helpers.tmpdir() .. "/uploads"
    local ok, out = run_recipe(
      "upload_weights.lua",
      string.format("'%s' every=1 epochs=2 imgsz=64 batch=8 " .. "workers=1 fraction=0.1 plots=false", dest)
    )
    assert(ok, out)
    for e = 1, 2 do
      local tensors, meta = yt.io.load_safetensors(string.format("%s/epoch%d.safetensors", dest, e))
      assert.are.equal(tostring(e - 1), meta.epoch)
      assert.is_not_nil(tensors["model.model.0.conv.weight"])
    end
    local files = yt.sys.listdir(dest)
    assert.are.same({ "epoch1.safetensors", "epoch2.safetensors" }, files) -- no temporary files left behind
  end)

  it("quickstart.lua trains on the embedded dataset and reports its mAP", function()
    local ok, out = run_recipe("quickstart.lua")
    assert(ok, out)
    assert.matches("quickstart: mAP50 [%d.]+, mAP50%-95 [%d.]+; best weights: .*best%.safetensors", out)
  end)
end)

describe("validation and prediction recipes", function()
  it("validate.lua validates with a customised validator", function()
    local ok, out = run_recipe("validate.lua", "imgsz=160 batch=32")
    assert(ok, out)
    assert.matches("on_val_end: 128 images in 4 batches", out, 1, true)
    assert.matches("mAP50 [%d.]+%s+mAP50%-95 [%d.]+", out)
  end)

  it("predict.lua streams Results and saves annotated images and labels", function()
    local ok, out = run_recipe("predict.lua", "imgsz=160")
    assert(ok, out)
    local n = 0
    for _ in out:gmatch("xywhn of the first box") do
      n = n + 1
    end
    assert.are.equal(3, n)
    local dir = out:match("saved to (%S+)")
    assert.is_not_nil(dir, out)
    assert.are.equal(3, #yt.sys.listdir(dir .. "/labels"))
  end)

  it("export_onnx.lua trains, exports best.onnx and onnxruntime agrees with yolotrain", function()
    local ok, out = run_recipe("export_onnx.lua", "epochs=1 imgsz=64 batch=8 workers=1 fraction=0.1")
    assert(ok, out)
    assert.matches("export_onnx: wrote .*best%.onnx", out)
    local db, dp = out:match("boxes differ by (%S+) px, class probabilities by (%S+)\n")
    assert(db, out)
    assert(tonumber(db) <= 1e-3 and tonumber(dp) <= 1e-5, out)
  end)

  it("README's recipe snippet runs as written", function()
    local readme = helpers.read_file(REPO .. "README.md")
    local code = readme:match("```lua\n(.-)```")
    assert(code and code:find("DDP_or_normally_train", 1, true), "no Lua snippet in README.md")
    local dir = helpers.tmpdir()
    helpers.write_file(dir .. "/snippet.lua", code)
    local ok, _, out = helpers.run(string.format("cd '%s' && '%s' snippet.lua", dir, EXE))
    assert(ok, out)
    assert.matches("best%.safetensors", out)
  end)
end)
