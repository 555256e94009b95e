-- The embedded default dataset: synthetic shapes (circle, square, triangle, cross) on varied backgrounds,
-- generated on first use by yolotrain's own deterministic generator (src/data/synth.c; see datasets/README.md).
--
--   local ensure = dofile("datasets/shapes.lua")
--   local yaml = ensure()            -- <datasets_dir>/shapes/data.yaml, generated when missing or outdated
--   local yaml = ensure(dir, opts)   -- another directory; opts = {seed=, n_train=, n_val=, imgsz=, classes=}
--
-- Prints one line when it generates; silent when the dataset is already there.
local yt = require("yolotrain")

local settings = require("yolotrain.utils.settings")

-- Generated where downloaded datasets go (the datasets_dir setting), never into this source tree.
local function default_dir() return settings.get("datasets_dir") .. "/shapes" end

return function(dir, opts)
  dir = (dir or default_dir()):gsub("(.)/+$", "%1")
  opts = opts or {}
  if yt.synth_is_complete(dir, opts) then return dir .. "/data.yaml" end
  io.write(
    string.format(
      "Generating the shapes dataset (%d train + %d val images, %dx%d) into %s ... ",
      opts.n_train or 400,
      opts.n_val or 100,
      opts.imgsz or 160,
      opts.imgsz or 160,
      dir
    )
  )
  io.flush()
  local t0 = yt.now()
  local yaml = yt.synth_generate(dir, opts)
  io.write(string.format("done (%.1f s)\n", yt.now() - t0))
  return yaml
end
