-- Downloads as Ultralytics does them (lua/yolotrain/utils/downloads.lua, src/io/download.c, src/io/unpack.c),
-- against a local HTTP server on 127.0.0.1 that the spec starts itself (tests/http_fixture.py), never the
-- internet: transfers through redirects, the failures (truncated, 404, stalled, too large, wrong SHA-256, server
-- down) with nothing left at the final name, safe unpacking, and the user's commands data=coco8.yaml and
-- model=yolov8n.pt with the download mirror (YOLOTRAIN_ASSETS_URL).
local helpers = require("helpers")
local yt = require("yolotrain.core")

local FIXTURE = helpers.repo_dir .. "tests/http_fixture.py"
local PT = helpers.parity_dir .. "/pt/yolov8n_coco128.pt"

local function sh(cmd)
  local ok, _, out = helpers.run(cmd)
  assert(ok, cmd .. "\n" .. out)
  return out
end

local function exists(p) return yt.sys.stat(p) ~= nil end

-- Every file below dir (relative names, sorted).
local function tree(dir)
  local out = {}
  local h = io.popen(string.format("cd '%s' && find . -mindepth 1 | sort", dir))
  for l in h:lines() do
    out[#out + 1] = l:sub(3)
  end
  h:close()
  return out
end

local function has_partial(dir)
  for _, f in ipairs(tree(dir)) do
    if f:match("%.partial$") or f:match("%.tmp%.%d+") then return f end
  end
  return nil
end

-- The server: serves root on a free port until stop().
local function start_server(root)
  local portfile = root .. "/port"
  local h = io.popen(string.format("python3 '%s' serve '%s' '%s' >/dev/null 2>&1 & echo $!", FIXTURE, root, portfile))
  local pid = h:read("l")
  h:close()
  local t0 = yt.machine.now()
  while not exists(portfile) do
    assert(yt.machine.now() - t0 < 20, "the test HTTP server did not start")
    yt.sys.sleep(0.05)
  end
  local port = helpers.read_file(portfile)
  return {
    pid = pid,
    url = "http://127.0.0.1:" .. port,
    root = root,
    stop = function() os.execute("kill " .. pid .. " 2>/dev/null") end,
  }
end

local function requests(server)
  local f = io.open(server.root .. "/requests.log")
  if not f then return {} end
  local out = {}
  for l in f:lines() do
    out[#out + 1] = l
  end
  f:close()
  return out
end

-- A port nothing listens on: bound and closed again by python.
local function closed_port()
  return sh(
    'python3 -c \'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); '
      .. "print(s.getsockname()[1]); s.close()'"
  ):match("%d+")
end

describe("downloads", function()
  local dir, served, server, downloads, settings

  setup(function()
    dir = helpers.tmpdir()
    served = dir .. "/served"
    sh(string.format("mkdir -p '%s'", served))
    -- a small payload and a tiny dataset (the synthetic generator) packed as Ultralytics' coco8.zip is
    helpers.write_file(served .. "/payload.bin", string.rep("yolotrain-payload-", 5000))
    local ds = dir .. "/synth"
    yt.synth.generate(ds, { n_train = 8, n_val = 4, imgsz = 64 })
    sh(string.format("python3 '%s' zip '%s/coco8.zip' '%s' coco8", FIXTURE, served, ds))
    sh(string.format("python3 '%s' targz '%s/mini.tar.gz' '%s' mini", FIXTURE, served, ds))
    sh(string.format("python3 '%s' zip '%s/flat.zip' '%s'", FIXTURE, served, ds))
    for _, kind in ipairs({ "dotdot", "absolute", "bomb" }) do
      sh(string.format("python3 '%s' evil '%s/%s.zip' %s", FIXTURE, served, kind, kind))
    end
    sh(string.format("cp '%s' '%s/yolov8n.pt'", PT, served))
    server = start_server(served)
    downloads = require("yolotrain.utils.downloads")
    settings = require("yolotrain.utils.settings")
    downloads.log = function() end
  end)

  teardown(function()
    if server then server.stop() end
    os.execute("rm -rf '" .. dir .. "'")
    os.remove("/tmp/yt_download_spec_evil.txt")
  end)

  describe("safe_download", function()
    local out
    before_each(function() out = helpers.tmpdir() end)
    after_each(function() os.execute("rm -rf '" .. out .. "'") end)

    it("follows a redirect and writes the whole file, checking its SHA-256 when given", function()
      local want = yt.io.sha256_file(served .. "/payload.bin")
      local dest = out .. "/sub/payload.bin"
      assert.equal(
        dest,
        downloads.safe_download(
          server.url .. "/redirect/payload.bin",
          dest,
          { sha256 = want:upper(), progress = false }
        )
      )
      assert.equal(helpers.read_file(served .. "/payload.bin"), helpers.read_file(dest))
      assert.same({ "sub", "sub/.payload.bin.lock", "sub/payload.bin" }, tree(out))
    end)

    it("refuses bytes whose SHA-256 is not the one given, leaving nothing at the final name", function()
      local dest = out .. "/payload.bin"
      local ok, err = pcall(
        downloads.safe_download,
        server.url .. "/files/payload.bin",
        dest,
        { sha256 = string.rep("ab", 32), progress = false }
      )
      assert.is_false(ok)
      assert.matches("SHA%-256 mismatch: expected " .. string.rep("ab", 32), err)
      assert.matches("%. Download .*/files/payload.bin by hand and put it at " .. dest:gsub("%p", "%%%0"), err)
      assert.is_false(exists(dest))
      assert.is_nil(has_partial(out))
    end)

    it("detects a truncated body, retries it, and gives up with nothing at the final name", function()
      local dest = out .. "/payload.bin"
      local logged = {}
      downloads.log = function(m) logged[#logged + 1] = m end
      local ok, err =
        pcall(downloads.safe_download, server.url .. "/truncate/payload.bin", dest, { retries = 1, progress = false })
      downloads.log = function() end
      assert.is_false(ok)
      assert.matches("cut off", err)
      assert.matches("retrying 1/1", table.concat(logged, "\n"))
      assert.is_false(exists(dest))
      assert.is_nil(has_partial(out))
    end)

    it("fails on HTTP 404 with the status, without retrying", function()
      local before = #requests(server)
      local ok, err = pcall(downloads.safe_download, server.url .. "/status/404", out .. "/x.zip", { progress = false })
      assert.is_false(ok)
      assert.matches("the server answered HTTP 404", err)
      assert.equal(before + 1, #requests(server))
      assert.same({ ".x.zip.lock" }, tree(out))
    end)

    it("gives up on a transfer that stalls", function()
      local t0 = yt.machine.now()
      local ok, err = pcall(
        downloads.safe_download,
        server.url .. "/stall/payload.bin",
        out .. "/p.bin",
        { retries = 0, stall_time = 1, stall_bytes = 1000, progress = false }
      )
      assert.is_false(ok)
      assert.matches("too slow", err)
      assert.is_true(yt.machine.now() - t0 < 15)
      assert.is_nil(has_partial(out))
    end)

    it("refuses a body over max_bytes", function()
      local ok, err = pcall(
        downloads.safe_download,
        server.url .. "/files/payload.bin",
        out .. "/p.bin",
        { max_bytes = 1000, progress = false }
      )
      assert.is_false(ok)
      assert.matches("larger than", err)
      assert.is_false(exists(out .. "/p.bin"))
    end)

    it("says what to download and where to put it when the server cannot be reached", function()
      local url = "http://127.0.0.1:" .. closed_port() .. "/files/payload.bin"
      local ok, err = pcall(downloads.safe_download, url, out .. "/p.bin", { progress = false })
      assert.is_false(ok)
      assert.matches("^Download failure: " .. url:gsub("%p", "%%%0") .. ": .*[Cc]onnect", err)
      assert.matches("%. Download " .. url:gsub("%p", "%%%0") .. " by hand and put it at " .. out, err)
    end)

    it("draws a byte progress bar", function()
      local tmp = out .. "/bar.txt"
      local f = assert(io.open(tmp, "w"))
      local saved = io.stdout
      io.output(f)
      local Progress = require("yolotrain.utils.progress")
      local bar = Progress(0, f, { unit = "B" })
      bar:set(512 * 1024, "x.zip", 2 * 1024 * 1024)
      bar:set(2 * 1024 * 1024, "x.zip")
      bar:close()
      io.output(saved)
      f:close()
      local text = helpers.read_file(tmp)
      local lines = {}
      for l in text:gmatch("[^\n]+") do
        lines[#lines + 1] = l
      end
      assert.equal(2, #lines) -- not a terminal: a line per quarter reached
      assert.truthy(
        lines[1]:find("x.zip  25% " .. string.rep("━", 5) .. string.rep("─", 15) .. " 512.00kB/2.00MB [", 1, true),
        lines[1]
      )
      assert.truthy(lines[2]:find("x.zip 100% " .. string.rep("━", 20) .. " 2.00MB/2.00MB [", 1, true), lines[2])
      assert.matches("%[%d%d:%d%d<%d%d:%d%d, [%d.]+[kMG]?B/s%]$", lines[2])
    end)
  end)

  describe("unpack", function()
    local parent
    before_each(function() parent = helpers.tmpdir() end)
    after_each(function() os.execute("rm -rf '" .. parent .. "'") end)

    it("unpacks a zip with one top folder to that folder, and a flat one to its stem", function()
      assert.equal(parent .. "/coco8", downloads.unpack(served .. "/coco8.zip", parent))
      assert.is_true(exists(parent .. "/coco8/images/train/000000.png"))
      assert.equal(parent .. "/flat", downloads.unpack(served .. "/flat.zip", parent))
      assert.is_true(exists(parent .. "/flat/labels/val/000000.txt"))
      assert.same({ "coco8", "flat" }, yt.sys.listdir(parent))
    end)

    it("unpacks a tar.gz", function()
      assert.equal(parent .. "/mini", downloads.unpack(served .. "/mini.tar.gz", parent))
      assert.is_true(exists(parent .. "/mini/images/val/000003.png"))
    end)

    for kind, want in pairs({
      dotdot = "member 'ds/%.%./%.%./evil%.txt' has a '%.%.' component",
      absolute = "member '/tmp/yt_download_spec_evil%.txt' has an absolute path",
      bomb = "member 'ds/images/train/zeros%.bin' takes the unpacked size past its bound",
    }) do
      it("refuses a " .. kind .. " zip naming the archive and the member, leaving nothing behind", function()
        local box = parent .. "/box"
        yt.sys.mkdir_p(box)
        local ok, err = pcall(downloads.unpack, served .. "/" .. kind .. ".zip", box)
        assert.is_false(ok)
        assert.matches(served .. "/" .. kind .. "%.zip: " .. want, err)
        assert.same({ "box" }, tree(parent))
        assert.is_false(exists("/tmp/yt_download_spec_evil.txt"))
      end)
    end
  end)

  -- The commands a user types, with the mirror pointing at the local server; settings and data in a private
  -- folder so the user's own are never touched.
  describe("yolotrain with YOLOTRAIN_ASSETS_URL", function()
    local home, env
    local function yolotrain(args, mirror)
      return helpers.run(
        string.format(
          "cd '%s' && env YOLOTRAIN_CONFIG_DIR='%s/cfg' XDG_DATA_HOME='%s/data' "
            .. "YOLOTRAIN_ASSETS_URL='%s' OMP_NUM_THREADS=2 '%s' %s",
          home,
          home,
          home,
          mirror or (server.url .. "/redirect"),
          helpers.yolotrain,
          args
        )
      )
    end
    before_each(function()
      home = helpers.tmpdir()
      env = { datasets = home .. "/data/yolotrain/datasets", weights = home .. "/data/yolotrain/weights" }
    end)
    after_each(function() os.execute("rm -rf '" .. home .. "'") end)

    it("data=coco8.yaml downloads the shipped YAML's archive into datasets_dir, unpacks it and trains", function()
      local ok, _, out = yolotrain(
        "detect train data=coco8.yaml model=yolov8n.yaml epochs=1 imgsz=64 batch=4 "
          .. "workers=0 plots=false mosaic=0 project="
          .. home
          .. "/runs name=t"
      )
      assert.is_true(ok, out)
      assert.matches("Downloading " .. server.url .. "/redirect/coco8%.zip to '" .. env.datasets .. "/coco8%.zip'", out)
      assert.matches("Dataset download success", out)
      assert.is_true(exists(env.datasets .. "/coco8/images/train/000007.png"))
      assert.is_false(exists(env.datasets .. "/coco8.zip")) -- the archive is removed once unpacked
      assert.is_nil(has_partial(env.datasets))
      assert.is_true(exists(home .. "/runs/t/weights/last.safetensors"))
      -- a second run finds it and downloads nothing
      local before = #requests(server)
      ok, _, out = yolotrain(
        "detect val data=coco8.yaml model="
          .. home
          .. "/runs/t/weights/last.safetensors "
          .. "imgsz=64 batch=4 workers=0 plots=false"
      )
      assert.is_true(ok, out)
      assert.not_matches("Downloading", out)
      assert.equal(before, #requests(server))
    end)

    it("model=yolov8n.pt downloads into weights_dir and loads; a data YAML's tar.gz download validates", function()
      helpers.write_file(
        home .. "/mini.yaml",
        string.format(
          "path: mini\ntrain: images/train\nval: images/val\nnames: [circle, square, triangle, cross]\n"
            .. "download: %s/files/mini.tar.gz\n",
          server.url
        )
      )
      local ok, _, out = yolotrain(
        "detect val data=mini.yaml model=yolov8n.pt imgsz=64 batch=4 workers=0 " .. "plots=false single_cls=false"
      )
      assert.is_true(ok, out)
      assert.matches(
        "Downloading " .. server.url .. "/redirect/yolov8n%.pt to '" .. env.weights .. "/yolov8n%.pt'",
        out
      )
      assert.equal(helpers.read_file(PT), helpers.read_file(env.weights .. "/yolov8n.pt"))
      assert.is_true(exists(env.datasets .. "/mini/images/val/000000.png"))
      assert.matches("all%s+4%s+%d+", out) -- the validation table
      assert.is_nil(has_partial(home))
      -- offline now: the weights_dir copy is used
      ok, _, out = yolotrain("detect export model=yolov8n.pt format=safetensors", "http://127.0.0.1:" .. closed_port())
      assert.is_true(ok, out)
      assert.not_matches("Downloading", out)
      assert.is_true(exists(home .. "/yolov8n.safetensors"))
    end)

    it("without the network, exits 1 with one line saying what to download, from where, to where", function()
      local port = closed_port()
      local ok, rc, out = yolotrain("detect val data=coco8.yaml model=yolov8s.pt", "http://127.0.0.1:" .. port)
      assert.is_false(ok)
      assert.equal(1, rc)
      assert.not_matches("traceback", out)
      assert.matches(
        "yolotrain: Download failure: http://127%.0%.0%.1:"
          .. port
          .. "/yolov8s%.pt: .*by hand and "
          .. "put it at "
          .. env.weights
          .. "/yolov8s%.pt",
        out
      )
      assert.is_false(exists(env.weights .. "/yolov8s.pt"))
      ok, rc, out = yolotrain("detect train data=coco8.yaml model=yolov8n.yaml", "http://127.0.0.1:" .. port)
      assert.equal(1, rc)
      assert.matches(
        "%. Download http://127%.0%.0%.1:"
          .. port
          .. "/coco8%.zip by hand and unpack it into "
          .. env.datasets
          .. " %(so that "
          .. env.datasets
          .. "/coco8/images/train exists%)",
        out
      )
      assert.not_matches("traceback", out)
    end)

    it("refuses an archive with a '..' member and leaves nothing outside datasets_dir", function()
      helpers.write_file(
        home .. "/evil.yaml",
        string.format(
          "path: ds\ntrain: images/train\nval: images/train\nnames: [a]\ndownload: %s/files/dotdot.zip\n",
          server.url
        )
      )
      local ok, rc, out = yolotrain("detect train data=evil.yaml model=yolov8n.yaml")
      assert.is_false(ok)
      assert.equal(1, rc)
      assert.matches("dotdot%.zip: member 'ds/%.%./%.%./evil%.txt' has a '%.%.' component", out)
      assert.same({ ".dotdot.zip.lock", ".dotdot.zip.unpack.lock" }, tree(env.datasets))
      assert.is_false(exists(home .. "/data/yolotrain/evil.txt"))
      assert.is_false(exists(home .. "/data/evil.txt"))
    end)

    it("never runs a download: that is code, and says what to fetch by hand", function()
      helpers.write_file(
        home .. "/code.yaml",
        "path: voc\ntrain: images/train\nval: images/val\nnames: [a]\n"
          .. "download: |\n  from ultralytics.utils.downloads import download\n"
          .. "  download(['https://example.com/VOCtrainval.tar'], dir='images')\n"
      )
      local ok, rc, out = yolotrain("detect train data=code.yaml model=yolov8n.yaml")
      assert.is_false(ok)
      assert.equal(1, rc)
      assert.matches(
        "its 'download:' is code, which yolotrain never runs: download the dataset by hand %(the "
          .. "code names https://example%.com/VOCtrainval%.tar%) and put it so that "
          .. env.datasets
          .. "/voc/images/train exists",
        out
      )
    end)

    it("keeps an unknown .pt name 'not found', with nothing requested", function()
      local before = #requests(server)
      local ok, rc, out = yolotrain("detect val data=coco8.yaml model=yolov9z.pt")
      assert.equal(1, rc, out)
      assert.is_false(ok)
      assert.matches("model 'yolov9z%.pt' not found %(nor in weights_dir " .. env.weights .. "%)", out)
      assert.equal(before, #requests(server))
    end)
  end)

  it("maps release assets to the mirror and knows Ultralytics' own URLs", function()
    downloads = downloads or require("yolotrain.utils.downloads")
    local base = "https://github.com/ultralytics/assets/releases/download"
    assert.equal(base, downloads.GITHUB_RELEASES_URL)
    assert.equal("v8.2.0", downloads.ASSETS_RELEASE)
    assert.same({ "yolov8n.pt", "yolov8s.pt", "yolov8m.pt", "yolov8l.pt", "yolov8x.pt" }, downloads.ASSET_NAMES)
    yt.sys.setenv("YOLOTRAIN_ASSETS_URL", "http://mirror.invalid/assets/")
    assert.equal("http://mirror.invalid/assets/yolov8n.pt", downloads.mirror(base .. "/v8.2.0/yolov8n.pt"))
    assert.equal("http://mirror.invalid/assets/coco128.zip", downloads.mirror(base .. "/v0.0.0/coco128.zip"))
    assert.equal("http://other.invalid/x.zip", downloads.mirror("http://other.invalid/x.zip"))
    yt.sys.setenv("YOLOTRAIN_ASSETS_URL", nil)
    assert.equal(base .. "/v8.2.0/yolov8n.pt", downloads.mirror(base .. "/v8.2.0/yolov8n.pt"))
    local data = require("yolotrain.data")
    for stem, split in pairs({ coco128 = "images/train2017", coco8 = "images/train" }) do
      local y = yt.io.load_yaml(data.SHIPPED_DIR .. "/" .. stem .. ".yaml")
      assert.equal(base .. "/v0.0.0/" .. stem .. ".zip", y.download)
      assert.equal(stem, y.path)
      assert.equal(split, y.train)
      assert.equal(80, #y.names + 1)
      assert.equal("person", y.names[0])
      assert.equal("toothbrush", y.names[79])
    end
  end)
end)
