-- TensorBoard event files of a training (lua/yolotrain/utils/callbacks/tensorboard.lua, src/io/tfevents.c), read
-- back by an independent reader (tests/tensorboard/read_events.py: its own CRC32C, Debian's python3-protobuf):
-- results.csv's scalars at step epoch + 1 and the final validation once more, a resumed run's new file, a write
-- that fails, and the switches (tensorboard=, the tensorboard setting, remove_callback).
local yt = require("yolotrain.core")
local helpers = require("helpers")
local cjson = require("cjson")
local fake = require("fake_training")

local READER = helpers.repo_dir .. "tests/tensorboard/read_events.py"
local PYTHON = "/usr/bin/python3" -- Debian's, which has python3-protobuf
local COCO = helpers.datasets_dir .. "/coco128"
local TB = "yolotrain.utils.callbacks.tensorboard"

local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

-- The event files of a run directory, in the order TensorBoard reads them (by name).
local function event_files(dir)
  local out = {}
  for _, name in ipairs(yt.sys.listdir(dir) or {}) do
    if name:match("^events%.out%.tfevents%.") then out[#out + 1] = dir .. "/" .. name end
  end
  table.sort(out)
  return out
end

-- The files as the reader returns them: { file, file_version, wall_time, scalars = { {tag, step, value, wall_time} } }
local function read_events(files)
  local err = os.tmpname()
  local words = { PYTHON, "'" .. READER .. "'" }
  for _, f in ipairs(files) do
    words[#words + 1] = "'" .. f .. "'"
  end
  local p = io.popen(table.concat(words, " ") .. " 2>'" .. err .. "'")
  local out = p:read("a")
  local ok = p:close()
  local msg = helpers.read_file(err)
  os.remove(err)
  assert(ok, "the reader refused the file: " .. msg)
  local decoded = cjson.decode(out)
  for _, f in ipairs(decoded) do
    for _, sc in ipairs(f.scalars) do
      sc.step = math.tointeger(sc.step)
    end
  end
  return decoded
end

-- results.csv as { columns = {...} (without epoch), rows = { [epoch] = { column -> number } } }
local function read_csv(path)
  local lines = {}
  for l in helpers.read_file(path):gmatch("[^\n]+") do
    lines[#lines + 1] = l
  end
  local header = {}
  for c in lines[1]:gmatch("[^,]+") do
    header[#header + 1] = c
  end
  local columns, rows = {}, {}
  for i = 2, #header do
    columns[#columns + 1] = header[i]
  end
  for i = 2, #lines do
    local cells, row = {}, {}
    for c in (lines[i] .. ","):gmatch("([^,]*),") do
      cells[#cells + 1] = c
    end
    for j = 2, #header do
      row[header[j]] = tonumber(cells[j])
    end
    rows[math.tointeger(tonumber(cells[1]))] = row
  end
  return { columns = columns, rows = rows, n = #lines - 1 }
end

-- What TensorBoard shows: for each tag, its (step, value) points over the files in order, a record at step s
-- replacing the earlier ones at steps >= s (a restarted run's preemption).
local function tensorboard_view(files)
  local series = {}
  for _, f in ipairs(files) do
    for _, s in ipairs(f.scalars) do
      local list = series[s.tag] or {}
      while #list > 0 and list[#list].step >= s.step do
        list[#list] = nil
      end
      list[#list + 1] = { step = s.step, value = s.value }
      series[s.tag] = list
    end
  end
  return series
end

-- results.csv prints 5 significant digits; the event holds the float32 of the same number
local function same_as_csv(value, cell)
  return cell ~= nil and math.abs(value - cell) <= 5.01e-5 * math.max(math.abs(value), math.abs(cell))
end

-- The tags of one epoch in the order the callback logs them: train losses and lr (on_train_epoch_end), then the
-- metrics and validation losses (on_fit_epoch_end), each in results.csv's column order.
local function epoch_tags(columns)
  local train, lr, fit = {}, {}, {}
  for _, c in ipairs(columns) do
    local list = c:match("^train/") and train or c:match("^lr/") and lr or fit
    list[#list + 1] = c
  end
  local all = {}
  for _, list in ipairs({ train, lr, fit }) do
    for _, c in ipairs(list) do
      all[#all + 1] = c
    end
  end
  return all, fit
end

-- Every record of a finished, uninterrupted run: each epoch's tags in order at step epoch, every value results.csv's,
-- then the final validation's metrics once more at the last step (returned as tag -> value, in `final_tags`'s
-- order; a validation of weights has no losses, so no val/ tags).
local function check_run(file, csv, final_tags)
  local all = epoch_tags(csv.columns)
  local at = 0
  for epoch = 1, csv.n do
    for _, tag in ipairs(all) do
      at = at + 1
      local s = file.scalars[at]
      assert(s, string.format("record %d (%s of epoch %d) missing", at, tag, epoch))
      assert.are.equal(tag, s.tag, "record " .. at)
      assert.are.equal(epoch, s.step, tag)
      assert(
        same_as_csv(s.value, csv.rows[epoch][tag]),
        string.format(
          "%s at step %d: %.9g in the event file, %s " .. "in results.csv",
          tag,
          epoch,
          s.value,
          tostring(csv.rows[epoch][tag])
        )
      )
    end
  end
  local final = {}
  for _, tag in ipairs(final_tags) do
    at = at + 1
    local s = file.scalars[at]
    assert(s and s.tag == tag and s.step == csv.n, string.format("final validation's %s at step %d", tag, csv.n))
    final[tag] = s.value
  end
  assert.are.equal(at, #file.scalars, "no records beyond those")
  return final
end

local function fake_trainer(dir, name, extra)
  local T = fake.make_trainer_class({ nb = 2 })
  local o = fake.overrides(dir, { epochs = 2, name = name, warmup_epochs = 0, nbs = 2 })
  for k, v in pairs(extra or {}) do
    o[k] = v
  end
  return T { overrides = o }
end

-- Runs fn with io.stdout (the engine's log) collected; returns what was written.
local function capture_stdout(fn)
  local real, parts = io.stdout, {}
  io.stdout = {
    write = function(_, ...)
      for _, s in ipairs({ ... }) do
        parts[#parts + 1] = tostring(s)
      end
    end,
    flush = function() end,
  }
  local ok, err = pcall(fn)
  io.stdout = real
  assert(ok, err)
  return table.concat(parts)
end

describe("TensorBoard event files", function()
  it("hold results.csv's scalars at step epoch + 1 of a real training, then the final validation's", function()
    local dir = helpers.tmpdir()
    local t0 = os.time()
    local ok, _, out = helpers.run(
      string.format(
        "cd '%s' && OMP_NUM_THREADS=1 '%s' detect train "
          .. "data='%s/data.yaml' model='%s' epochs=2 imgsz=64 batch=4 nbs=4 fraction=0.0625 workers=1 plots=false "
          .. "project='%s' name=run",
        dir,
        helpers.yolotrain,
        COCO,
        fake.tiny_yaml(dir),
        dir
      )
    )
    assert(ok, out)
    local run = dir .. "/run"
    local _, n = out:gsub(
      "TensorBoard: Start with 'tensorboard %-%-logdir "
        .. run:gsub("%p", "%%%0")
        .. "', view at http://localhost:6006/\n",
      ""
    )
    assert.are.equal(1, n, out)
    local files = event_files(run)
    assert.are.equal(1, #files)
    local host = io.popen("hostname"):read("l")
    local stamp, name_host, counter = files[1]:match("/events%.out%.tfevents%.(%d+)%.(.+)%.%d+%.(%d+)$")
    assert.are.equal(10, #stamp)
    assert.is_true(tonumber(stamp) >= t0 - 1 and tonumber(stamp) <= os.time(), stamp)
    assert.are.equal(host, name_host)
    assert.are.equal("0", counter)
    local file = read_events(files)[1]
    assert.are.equal("brain.Event:2", file.file_version)
    local csv = read_csv(run .. "/results.csv")
    assert.are.equal(2, csv.n)
    assert.are.equal(13, #csv.columns)
    local final =
      check_run(file, csv, { "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)" })
    for tag, v in pairs(final) do
      assert.is_true(v == v and v >= 0 and (not tag:match("^metrics/") or v <= 1), tag .. " = " .. v)
    end
    local last = 0
    for _, s in ipairs(file.scalars) do
      assert.is_true(s.wall_time >= file.wall_time and s.wall_time >= last and s.wall_time <= os.time() + 1)
      last = s.wall_time
    end
  end)

  it("hold the trainer's own numbers as float32, and the final validation's metrics", function()
    local dir = helpers.tmpdir()
    local t = fake_trainer(dir, "exact")
    local seen = {}
    local function keep(tr, t2)
      for k, v in pairs(t2 or {}) do
        seen[#seen + 1] = { tag = k, step = tr.epoch + 1, value = v }
      end
    end
    t:add_callback("on_train_epoch_end", function(tr)
      keep(tr, tr:label_loss_items(tr.tloss, "train"))
      keep(tr, tr.lr)
    end)
    t:add_callback("on_fit_epoch_end", function(tr) keep(tr, tr.metrics) end)
    t:train()
    local file = read_events(event_files(t.save_dir))[1]
    local final_tags = {}
    for _, tag in ipairs(epoch_tags(read_csv(t.csv).columns)) do
      if t.metrics[tag] ~= nil and not tag:match("^train/") and not tag:match("^lr/") then
        final_tags[#final_tags + 1] = tag
      end
    end
    check_run(file, read_csv(t.csv), final_tags)
    assert.are.equal(#seen, #file.scalars)
    local logged = {}
    for _, s in ipairs(file.scalars) do
      local key = s.tag .. "@" .. s.step
      logged[key] = logged[key] or {}
      table.insert(logged[key], s.value)
    end
    for _, e in ipairs(seen) do
      local list = logged[e.tag .. "@" .. e.step]
      assert(list and #list > 0, e.tag .. " at step " .. e.step .. " not logged")
      assert.are.equal(f32(e.value), table.remove(list, 1), e.tag .. " at step " .. e.step)
    end
    -- the last records are the final validation of best, which left its metrics on the trainer
    for i, tag in ipairs(final_tags) do
      local s = file.scalars[#file.scalars - #final_tags + i]
      assert.are.equal(tag, s.tag)
      assert.are.equal(f32(t.metrics[tag]), s.value, tag)
    end
  end)

  it("of a resumed run: a new file beside the old one, whose steps replace a cut-short epoch's", function()
    local dir = helpers.tmpdir()
    local part = fake_trainer(dir, "resumed", { epochs = 3 })
    -- epoch 2 dies after TensorBoard logged its losses and before its checkpoint
    part:add_callback("on_train_epoch_end", function(tr)
      if tr.epoch == 1 then error("power cut") end
    end)
    assert.is_false(pcall(part.train, part))
    local before = event_files(part.save_dir)
    assert.are.equal(1, #before)
    local stale = 0
    for _, s in ipairs(read_events(before)[1].scalars) do
      if s.step == 2 then stale = stale + 1 end
    end
    assert.are.equal(6, stale, "the cut-short epoch's train losses and lr were logged")
    -- TensorBoard reads a run's files by name, which starts with the second a file was opened: resume later
    local t = os.time()
    while os.time() == t do
    end
    local resumed = fake.make_trainer_class({ nb = 2 }) { overrides = { resume = part.last } }
    resumed:train()
    local files = event_files(part.save_dir)
    assert.are.equal(2, #files)
    assert.are.equal(before[1], files[1], "the first file is kept as it was")
    local data = read_events(files)
    assert.are.equal(2, data[2].scalars[1].step, "the resumed run starts at its first epoch")
    local csv = read_csv(part.csv)
    assert.are.equal(3, csv.n)
    local view = tensorboard_view(data)
    local _, fit = epoch_tags(csv.columns)
    local is_fit = {}
    for _, tag in ipairs(fit) do
      is_fit[tag] = true
    end
    for _, tag in ipairs(csv.columns) do
      local points = view[tag]
      assert.are.equal(3, #points, tag)
      for e = 1, 3 do
        assert.are.equal(e, points[e].step, tag)
        -- the last point of a metric is the final validation's (as in Ultralytics' runs)
        local want = (is_fit[tag] and e == 3) and f32(resumed.metrics[tag]) or csv.rows[e][tag]
        assert(
          same_as_csv(points[e].value, want),
          string.format("%s at step %d: %.9g, not %s", tag, e, points[e].value, tostring(want))
        )
      end
    end
  end)

  it("are not written with tensorboard=false, nor with the setting off unless tensorboard=true", function()
    local dir = helpers.tmpdir()
    local off = fake_trainer(dir, "off", { tensorboard = false })
    off:train()
    assert.are.same({}, event_files(off.save_dir))
    assert.is_not_nil(io.open(off.csv), "the run itself went on")
    local config = dir .. "/config"
    os.execute("mkdir -p '" .. config .. "'")
    helpers.write_file(config .. "/settings.yaml", "tensorboard: false\n")
    local saved = os.getenv("YOLOTRAIN_CONFIG_DIR")
    yt.sys.setenv("YOLOTRAIN_CONFIG_DIR", config)
    local ok, err = pcall(function()
      local by_setting = fake_trainer(dir, "setting_off")
      by_setting:train()
      assert.are.same({}, event_files(by_setting.save_dir))
      local forced = fake_trainer(dir, "forced", { tensorboard = true })
      forced:train()
      assert.are.equal(1, #event_files(forced.save_dir))
    end)
    yt.sys.setenv("YOLOTRAIN_CONFIG_DIR", saved)
    assert(ok, err)
  end)

  it("are the callbacks' doing: a recipe removes them with remove_callback", function()
    local dir = helpers.tmpdir()
    local t = fake_trainer(dir, "removed")
    local tb = require(TB)
    for event, fn in pairs(tb.callbacks) do
      assert.are.equal(1, t:remove_callback(event, fn), event)
    end
    local out = capture_stdout(function() t:train() end)
    assert.are.same({}, event_files(t.save_dir))
    assert.is_nil(out:find("TensorBoard", 1, true), out)
  end)

  it("stop after a failed write with one warning, and the training carries on", function()
    local dir = helpers.tmpdir()
    local t = fake_trainer(dir, "broken")
    -- the writer breaks under the callback (the C tests cover a real write error)
    t:add_callback("on_train_start", function(tr) require(TB).writer(tr):close() end)
    local out = capture_stdout(function() t:train() end)
    local _, n =
      out:gsub("WARNING: TensorBoard: the TensorBoard writer is closed; not logging the rest of this " .. "run", "")
    assert.are.equal(1, n, out)
    assert.are.equal(2, read_csv(t.csv).n)
    local files = event_files(t.save_dir)
    assert.are.equal(1, #files)
    assert.are.same({}, read_events(files)[1].scalars)
  end)
end)
