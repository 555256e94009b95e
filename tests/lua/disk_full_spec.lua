-- A full disk during training: one clear error naming the file, the checkpoint already saved stays intact, and a
-- resume after space is freed finishes the run. The run directory lives on a small tmpfs (needs root to mount).
local helpers = require("helpers")
local yt = require("yolotrain.core")

local COCO = helpers.datasets_dir .. "/coco128"

local function is_root()
  local p = io.popen("id -u")
  local uid = p:read("a")
  p:close()
  return tonumber(uid) == 0
end

describe("a full disk", function()
  it("stops with one error naming the checkpoint, keeps the last one, and resumes once space is freed", function()
    if not is_root() then
      pending("needs root to mount a tmpfs")
      return
    end
    local dir = helpers.tmpdir()
    local mnt = dir .. "/small"
    os.execute(string.format("mkdir -p '%s'", mnt))
    -- a YOLOv8n checkpoint is ~51 MB: last and best of epoch 1 fit, the temporary of epoch 2's last does not
    assert(os.execute(string.format("mount -t tmpfs -o size=130m tmpfs '%s'", mnt)), "mount failed")
    finally(function() os.execute(string.format("umount -l '%s'", mnt)) end)
    local words = string.format(
      "detect train data='%s/data.yaml' model=yolov8n.yaml epochs=3 imgsz=64 batch=16 "
        .. "nbs=16 fraction=0.125 workers=1 plots=false project='%s' name=run",
      COCO,
      mnt
    )
    local ok, rc, out =
      helpers.run(string.format("cd '%s' && OMP_NUM_THREADS=1 '%s' %s", dir, helpers.yolotrain, words))
    assert.is_false(ok, out)
    assert.are.equal(1, rc, out)
    assert.matches(
      "yolotrain: [^\n]*last.safetensors[^\n]*No space left on device\ntraining stopped; the last " .. "checkpoint %(",
      out
    )
    assert.is_nil(out:find("stack traceback", 1, true), "a full disk is not a bug: no traceback\n" .. out)
    assert.is_nil(out:find("%.lua:%d+:"), "no engine file:line in the message\n" .. out)
    local last = mnt .. "/run/weights/last.safetensors"
    local _, meta = yt.io.load_safetensors(last)
    assert.are.equal("0", meta.epoch)
    for _, name in ipairs(yt.sys.listdir(mnt .. "/run/weights")) do
      assert.is_nil(name:find(".tmp.", 1, true), "temporary left: " .. name)
    end
    -- free space (grow the file system), then resume
    assert(os.execute(string.format("mount -o remount,size=400m '%s'", mnt)), "remount failed")
    local ok2, _, out2 = helpers.run(
      string.format("cd '%s' && OMP_NUM_THREADS=1 '%s' detect train resume='%s'", dir, helpers.yolotrain, last)
    )
    assert(ok2, out2)
    assert.matches("Resuming training", out2, 1, true)
    assert.matches("Optimizer stripped from", out2, 1, true)
    local _, meta2 = yt.io.load_safetensors(last)
    assert.are.equal("-1", meta2.epoch, "the finished run's last is stripped")
  end)
end)
