-- amp=true (bf16 mixed precision, docs/reference.md "Precision") learns as amp=false does: the same training run
-- both ways, step by step, on a small synthetic dataset; the precision is said at the start, comes back on resume,
-- and where the CPU has no BF16 (DNNL_MAX_CPU_ISA=AVX2 hides it) amp=true is float32 bitwise.
local yt = require("yolotrain.core")
local detect = require("yolotrain.models.yolo.detect")
local helpers = require("helpers")

local _, has_bf16 = yt.sys.cpu_isa()

-- one thread: the machine may be shared, and a loaded machine makes OpenMP's barriers slow
local dir, data, threads
setup(function()
  dir = helpers.tmpdir()
  data = yt.synth.generate(dir .. "/shapes", { n_train = 16, n_val = 8, imgsz = 64, seed = 3 })
  threads = yt.sys.get_num_threads()
  yt.sys.set_num_threads(1)
end)
teardown(function()
  yt.sys.set_num_threads(threads)
  os.execute("rm -rf '" .. dir .. "'")
end)

-- The total loss of every step, and the trainer: the 16 images without augmentation, so that the loss falls steadily
-- (with mosaic the curves of 250 steps are too noisy to compare).
local function train(name, overrides)
  local losses = {}
  local t = detect.Detection_Trainer {
    overrides = helpers.merged({
      model = "yolov8n.yaml",
      data = data,
      imgsz = 64,
      batch = 8,
      nbs = 8,
      epochs = 125,
      warmup_epochs = 1,
      close_mosaic = 0,
      mosaic = 0,
      fliplr = 0,
      hsv_h = 0,
      hsv_s = 0,
      hsv_v = 0,
      scale = 0,
      translate = 0,
      workers = 0,
      val = false,
      save = false,
      plots = false,
      verbose = false,
      project = dir,
      name = name,
      exist_ok = true,
      seed = 0,
    }, overrides),
  }
  t:add_callback(
    "on_train_batch_end",
    function(tr) losses[#losses + 1] = tr.loss_items[1] + tr.loss_items[2] + tr.loss_items[3] end
  )
  t:train()
  return losses, t
end

-- The mean loss of each window of W steps.
local W = 25
local function windows(losses)
  local out = {}
  for a = 1, #losses - W + 1, W do
    local s = 0
    for i = a, a + W - 1 do
      s = s + losses[i]
    end
    out[#out + 1] = s / W
  end
  return out
end

describe("amp=true", function()
  -- Training is chaotic: float32 with another summation order (the convolutions' dnnl backend instead of dnnl_all)
  -- parts from the default by up to 17% in a window of this run and ends 5% away; bf16 parted by up to 31% and ended
  -- 15% higher (measured 2026-12-08: 1.62 against 1.41), so bf16 is measured here against that spread, in the same
  -- run, and amp stays off by default until the quickstart's mAP says bf16 learns as well. A broken bf16 pass
  -- (wrong gradients) does not learn at all.
  it("learns within twice the spread of another float32 summation order, over the same 250 steps", function()
    if not has_bf16 then
      print("\n  this CPU has no BF16: amp=true is float32 here (the last test checks that)")
      return
    end
    local t0 = yt.machine.now()
    local bf, tb = train("bf16", { amp = true })
    local t1 = yt.machine.now()
    local fp, tf = train("fp32", { amp = false })
    local t2 = yt.machine.now()
    local backend = yt.sys.conv_backend()
    yt.sys.set_conv_backend(backend == "dnnl" and "gemm" or "dnnl")
    local ok, other = pcall(train, "fp32_other_order", { amp = false })
    yt.sys.set_conv_backend(nil)
    assert(ok, other)
    assert.is_true(tb.amp)
    assert.is_false(tf.amp)
    assert.are.equal(250, #fp)
    assert.are.equal(#fp, #bf)
    -- the first step: the same weights and batch, bf16 rounding only
    local rel1 = math.abs(bf[1] - fp[1]) / fp[1]
    assert(rel1 < 1e-2, string.format("first step: bf16 %.6g vs fp32 %.6g", bf[1], fp[1]))
    assert(bf[1] ~= fp[1], "the first step is float32 bitwise: bf16 did not run")
    local wb, wf, wo = windows(bf), windows(fp), windows(other)
    local worst, spread, report = 0, 0, {}
    for k = 1, #wf do
      worst = math.max(worst, math.abs(wb[k] - wf[k]) / wf[k])
      spread = math.max(spread, math.abs(wo[k] - wf[k]) / wf[k])
      report[k] = string.format("%.2f/%.2f/%.2f", wb[k], wf[k], wo[k])
    end
    local final = math.abs(wb[#wb] - wf[#wf]) / wf[#wf]
    local final_spread = math.abs(wo[#wo] - wf[#wf]) / wf[#wf]
    print(
      string.format(
        "\n  %d steps in %.0f s (bf16) and %.0f s (fp32); mean loss per %d steps, bf16/fp32/fp32 other order: %s; "
          .. "worst window %.3f (another float32 order: %.3f), last %.3f (%.3f)",
        #fp,
        t1 - t0,
        t2 - t1,
        W,
        table.concat(report, " "),
        worst,
        spread,
        final,
        final_spread
      )
    )
    assert(
      worst < 2 * spread + 0.05,
      string.format("the loss curves part by %.3f (float32 orders: %.3f)", worst, spread)
    )
    assert(final < 0.25, string.format("the last %d steps differ by %.3f", W, final))
    for name, w in pairs({ bf16 = wb, fp32 = wf }) do
      local peak = math.max(table.unpack(w))
      assert(w[#w] < 0.5 * peak, string.format("%s did not learn: peak %.3f, last %.3f", name, peak, w[#w]))
    end
    -- the process's setting comes back when a training ends
    assert.are.same({ false, "float32" }, { yt.sys.autocast() })
  end)

  it("comes back on resume: a run interrupted with amp=false resumes in float32, amp=true in bf16", function()
    for _, amp in ipairs({ false, true }) do
      local name = "resume_" .. tostring(amp)
      local t = detect.Detection_Trainer {
        overrides = {
          model = "yolov8n.yaml",
          data = data,
          imgsz = 32,
          batch = 8,
          epochs = 2,
          workers = 0,
          val = false,
          plots = false,
          verbose = false,
          project = dir,
          name = name,
          amp = amp,
        },
      }
      t:add_callback("on_fit_epoch_end", function(tr)
        if tr.epoch == 0 then
          tr.stop = true
          tr.interrupted = true
        end
      end)
      t:train()
      assert.are.equal(amp and has_bf16, t.amp)
      local resumed = detect.Detection_Trainer { overrides = { resume = t.last } }
      local seen
      resumed:add_callback("on_train_start", function(tr) seen = { tr.amp, tr.args.amp, yt.sys.autocast() } end)
      resumed:train()
      assert.are.same({ amp and has_bf16, amp, amp, (amp and has_bf16) and "bf16" or "float32" }, seen)
    end
  end)

  it("says which precision runs, once; without BF16 instructions it trains in float32, bitwise amp=false", function()
    -- DNNL_MAX_CPU_ISA=AVX2 hides the BF16 instructions from oneDNN: the CPU check must see it
    local script = dir .. "/no_bf16.lua"
    helpers.write_file(
      script,
      string.format(
        [[
local detect = require("yolotrain.models.yolo.detect")
for _, amp in ipairs({ true, false }) do
  local t = detect.Detection_Trainer { overrides = { model = "yolov8n.yaml", data = %q, imgsz = 32, batch = 8,
    epochs = 1, workers = 0, val = false, plots = false, verbose = false, project = %q, name = "nobf16",
    exist_ok = true, amp = amp } }
  local losses = {}
  t:add_callback("on_train_batch_end", function(tr) losses[#losses + 1] = string.format("%%.17g", tr.loss) end)
  t:train()
  print(string.format("amp=%%s trainer.amp=%%s losses: %%s", tostring(amp), tostring(t.amp), table.concat(losses, " ")))
end
]],
        data,
        dir
      )
    )
    local ok, _, out =
      helpers.run(string.format("DNNL_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1 '%s' '%s'", helpers.yolotrain, script))
    assert(ok, out)
    local _, lines = out:gsub("\nAMP: ", "")
    assert.are.equal(2, lines, out)
    assert.is_truthy(
      out:find("AMP: this CPU has no BF16 instructions (oneDNN ISA avx2): amp=true trains in float32", 1, true),
      out
    )
    assert.is_truthy(out:find("AMP: amp=false: training in float32", 1, true), out)
    local with = out:match("amp=true trainer%.amp=false losses: ([^\n]+)")
    local without = out:match("amp=false trainer%.amp=false losses: ([^\n]+)")
    assert.is_not_nil(with, out)
    assert.are.equal(without, with)
    assert.is_true(#with > 20)
    -- and here, with BF16, the line says bf16
    if has_bf16 then
      local ok2, _, out2 = helpers.run(string.format("OMP_NUM_THREADS=1 '%s' '%s'", helpers.yolotrain, script))
      assert(ok2, out2)
      assert.is_truthy(out2:find("\nAMP: bf16 mixed precision %(avx512_core"), out2)
      assert.is_truthy(out2:find("amp=true trainer.amp=true losses", 1, true), out2)
    end
  end)
end)
