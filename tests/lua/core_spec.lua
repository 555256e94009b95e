-- The yolotrain.core module's layout: grouped areas (src/lua/modules.def) and their flat aliases.
local yt = require("yolotrain.core")

local GROUPS = { "machine", "io", "nn", "metrics", "loss", "optim", "data", "synth" }

describe("yolotrain.core", function()
  it("groups names per area, each the same value as its flat alias", function()
    assert.are.equal(yt.data_loader, yt.data.loader)
    assert.are.equal(yt.onnx_writer, yt.io.onnx_writer)
    assert.are.equal(yt.load_yaml, yt.io.load_yaml)
    assert.are.equal(yt.nms, yt.metrics.nms)
    assert.are.equal(yt.synth_generate, yt.synth.generate)
    assert.are.equal(yt.clip_grad_norm, yt.optim.clip_grad_norm)
    assert.is_function(yt.optim.new)
    local flat = {}
    for k, v in pairs(yt) do
      flat[v] = flat[v] or k
    end
    local n = 0
    for _, g in ipairs(GROUPS) do
      assert.is_table(yt[g], g)
      for short, v in pairs(yt[g]) do
        if not (g == "optim" and short == "new") then
          n = n + 1
          local alias = flat[v]
          assert.is_not_nil(alias, "yt." .. g .. "." .. short .. " has no flat alias")
          assert.is_true(alias == short or alias == g .. "_" .. short, "yt." .. g .. "." .. short .. " ~ yt." .. alias)
        end
      end
    end
    assert.is_true(n >= 60, "only " .. n .. " grouped names")
  end)

  it("keeps tensor functions at the top, as torch does", function()
    for _, k in ipairs({ "tensor", "zeros", "cat", "sum", "manual_seed", "backward" }) do
      assert.is_function(yt[k], k)
    end
    assert.is_nil(rawget(yt, "ops"))
    assert.is_nil(rawget(yt, "tensor_zeros"))
  end)
end)
