-- `yolotrain attach`: a REPL into a running training over the run directory's control socket (docs/cli.md).
local yt = require("yolotrain.core")
local helpers = require("helpers")

local REPO = helpers.repo_dir

local function wait_for(path, seconds)
  local t0 = yt.machine.now()
  while not yt.sys.stat(path) and yt.machine.now() - t0 < seconds do
    yt.sys.sleep(0.05)
  end
  return yt.sys.stat(path) ~= nil
end

local function wait_gone(path, seconds)
  local t0 = yt.machine.now()
  while yt.sys.stat(path) and yt.machine.now() - t0 < seconds do
    yt.sys.sleep(0.05)
  end
  return yt.sys.stat(path) == nil
end

-- A fake training of `nb` batches per epoch that sleeps `pause` seconds per step and logs every step's lr of the
-- weight group (the one its optimizer step used) as "epoch ni lr" lines in DIR/lr.txt.
local function start_training(dir, name, nb, epochs, step_sleep)
  local path = dir .. "/recipe.lua"
  helpers.write_file(
    path,
    string.format(
      [[
package.path = %q .. "tests/lua/?.lua;" .. package.path
local yt = require("yolotrain")
local fake = require("fake_training")
local T = fake.make_trainer_class({ nb = %d })
local DIR = %q
local t = T{ overrides = { model = fake.tiny_yaml(DIR), data = 'fake', epochs = %d, imgsz = 32, batch = 4,
  project = DIR, name = %q, plots = false, verbose = false, warmup_epochs = 0, optimizer = 'SGD' } }
local lr = io.open(DIR .. "/lr.txt", "w")
t:add_callback("on_train_batch_end", function(tr)
  lr:write(string.format("%%d %%d %%.17g\n", tr.epoch, tr.ni or -1, tr.optimizer:get_group(2).lr))
  lr:flush()
end)
t:add_callback("on_train_batch_end", function() yt.sys.sleep(%g) end)
t:train()
lr:close()
print("finished at epoch " .. (t.epoch + 1) .. ", lr0 " .. t.args.lr0)
]],
      REPO,
      nb,
      dir,
      epochs,
      name,
      step_sleep
    )
  )
  local h = io.popen(
    string.format(
      "('%s' '%s' >'%s/train.log' 2>&1 </dev/null; echo $? >'%s/train.rc') & echo $!",
      helpers.yolotrain,
      path,
      dir,
      dir
    )
  )
  local pid = h:read("l")
  h:close()
  return pid
end

local function read_or_empty(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function lr_log(dir)
  local rows = {}
  for line in helpers.read_file(dir .. "/lr.txt"):gmatch("[^\n]+") do
    local e, ni, lr = line:match("^(%d+) (%-?%d+) (%S+)$")
    rows[#rows + 1] = { epoch = tonumber(e), ni = tonumber(ni), lr = tonumber(lr) }
  end
  return rows
end

describe("yolotrain attach", function()
  it("reads the epoch, changes lr0, pauses, continues; killing the client leaves the training to finish", function()
    local dir = helpers.tmpdir()
    start_training(dir, "run", 20, 3, 0.05)
    local sock = dir .. "/run/attach.sock"
    assert.is_true(wait_for(sock, 60), "no socket: " .. (helpers.read_file(dir .. "/train.log")))
    local ok, _, mode = helpers.run(string.format("stat -c %%a '%s'", sock))
    assert.is_true(ok)
    assert.are.equal("600", mode:match("%d+"))

    -- the client: entries with pauses between them, then it stays connected until killed
    local script = dir .. "/client.sh"
    helpers.write_file(
      script,
      string.format(
        [[
{
  printf 'print("epoch", trainer.epoch)\n'
  printf 'local e = trainer:set{lr0 = 0.02}[1]; print("changed at", e.epoch, e.ni)\n'
  printf 'pause()\nprint("paused at", trainer.ni)\n'
  sleep 1
  printf 'print("still at", trainer.ni)\n'
  printf 'error("a broken entry")\n'
  printf 'print("alive after the error")\ncont()\n'
  sleep 600
} | '%s' attach '%s/run' >'%s/client.out' 2>'%s/client.err' &
echo $!
]],
        helpers.yolotrain,
        dir,
        dir,
        dir
      )
    )
    local h = io.popen("sh '" .. script .. "'")
    local client = h:read("l")
    h:close()
    local t0 = yt.machine.now()
    while
      not read_or_empty(dir .. "/client.out"):find("alive after the error", 1, true) and yt.machine.now() - t0 < 60
    do
      yt.sys.sleep(0.1)
    end
    yt.sys.sleep(0.3)
    os.execute("kill -9 " .. client)

    assert.is_true(wait_for(dir .. "/train.rc", 180), "the training did not end")
    local log = helpers.read_file(dir .. "/train.log")
    assert.are.equal("0", helpers.read_file(dir .. "/train.rc"):match("%d+"), log)
    assert.matches("finished at epoch 3, lr0 0.02", log, 1, true)
    assert.is_true(wait_gone(sock, 5), "the socket is left behind")

    local out = helpers.read_file(dir .. "/client.out")
    local err = helpers.read_file(dir .. "/client.err")
    local epoch = tonumber(out:match("epoch\t(%d+)"))
    assert.is_truthy(epoch, out .. err)
    local ce, cni = out:match("changed at\t(%d+)\t(%d+)")
    ce, cni = tonumber(ce), tonumber(cni)
    assert.is_truthy(cni, out .. err)
    local p1, p2 = out:match("paused at\t(%d+)"), out:match("still at\t(%d+)")
    assert.are.equal(p1, p2, "a step ran while paused")
    assert.matches("a broken entry", err, 1, true)
    assert.matches("alive after the error", out, 1, true)

    -- the schedule: lr = lr0 * lf(epoch), lf = (1 - e/3) * 0.99 + 0.01; 0.01 before the change, 0.02 after
    local function lf(e) return math.max(1 - e / 3, 0) * (1 - 0.01) + 0.01 end
    local before, after = 0, 0
    for _, r in ipairs(lr_log(dir)) do
      local lr0 = r.ni > cni and 0.02 or 0.01
      assert.is_true(
        math.abs(r.lr - lr0 * lf(r.epoch)) < 1e-12,
        string.format("epoch %d step %d: lr %.17g, expected %g * lf", r.epoch, r.ni, r.lr, lr0)
      )
      if r.ni > cni then
        after = after + 1
      else
        before = before + 1
      end
    end
    assert.is_true(before > 0 and after > 20)
    -- args.yaml's history names the change
    local args = yt.io.load_yaml(dir .. "/run/args.yaml")
    assert.are.equal(0.02, args.lr0)
    assert.are.equal("lr0", args.history[1].key)
    assert.are.equal(0.01, args.history[1].old)
    assert.are.equal(ce + 1, args.history[1].epoch)
  end)

  it("lets one client in at a time, and ends the session when the training ends", function()
    local dir = helpers.tmpdir()
    start_training(dir, "one", 10, 2, 0.05)
    local sock = dir .. "/one/attach.sock"
    assert.is_true(wait_for(sock, 60), helpers.read_file(dir .. "/train.log"))
    os.execute(
      string.format(
        "(printf 'print(\"first in\")\\n'; sleep 600) | '%s' attach '%s' >'%s/a.out' 2>&1 &",
        helpers.yolotrain,
        sock,
        dir
      )
    )
    local t0 = yt.machine.now()
    while not read_or_empty(dir .. "/a.out"):find("first in", 1, true) and yt.machine.now() - t0 < 30 do
      yt.sys.sleep(0.1)
    end
    local ok, rc, out = helpers.run(string.format("echo 'print(1)' | '%s' attach '%s'", helpers.yolotrain, sock))
    assert.is_false(ok)
    assert.are.equal(1, rc)
    assert.matches("another client is attached to this training; only one at a time", out, 1, true)
    assert.is_true(wait_for(dir .. "/train.rc", 120))
    assert.are.equal("0", helpers.read_file(dir .. "/train.rc"):match("%d+"))
    t0 = yt.machine.now()
    while not helpers.read_file(dir .. "/a.out"):find("the training ended", 1, true) and yt.machine.now() - t0 < 10 do
      yt.sys.sleep(0.1)
    end
    assert.matches("the training ended", helpers.read_file(dir .. "/a.out"), 1, true)
  end)

  it("finds the training by its pid and the newest run when no target is given", function()
    local dir = helpers.tmpdir()
    local cfgdir = dir .. "/config"
    os.execute("mkdir -p '" .. cfgdir .. "'")
    helpers.write_file(cfgdir .. "/settings.yaml", "runs_dir: " .. dir .. "/runs\n")
    -- the training's pid is that of the yolotrain process, which writes it down
    local path = dir .. "/recipe.lua"
    helpers.write_file(
      path,
      string.format(
        [[
package.path = %q .. "tests/lua/?.lua;" .. package.path
local yt = require("yolotrain")
local fake = require("fake_training")
local T = fake.make_trainer_class({ nb = 10 })
local DIR = %q
local t = T{ overrides = { model = fake.tiny_yaml(DIR), data = 'fake', epochs = 2, imgsz = 32, batch = 4,
  project = DIR .. "/runs/detect", name = "bypid", plots = false, verbose = false } }
local f = io.open(DIR .. "/pid", "w"); f:write(yt.sys.getpid()); f:close()
t:add_callback("on_train_batch_end", function() yt.sys.sleep(0.05) end)
t:train()
]],
        REPO,
        dir
      )
    )
    os.execute(
      string.format(
        "YOLOTRAIN_CONFIG_DIR='%s' '%s' '%s' >'%s/train.log' 2>&1 </dev/null &",
        cfgdir,
        helpers.yolotrain,
        path,
        dir
      )
    )
    assert.is_true(wait_for(dir .. "/runs/detect/bypid/attach.sock", 60), helpers.read_file(dir .. "/train.log"))
    local pid = helpers.read_file(dir .. "/pid")
    local ok, _, out = helpers.run(
      string.format(
        "echo 'print(\"by pid\", trainer.args.name)' | " .. "YOLOTRAIN_CONFIG_DIR='%s' '%s' attach %s",
        cfgdir,
        helpers.yolotrain,
        pid
      )
    )
    assert.is_true(ok, out)
    assert.matches("by pid\tbypid", out, 1, true)
    ok, _, out = helpers.run(
      string.format(
        "echo 'print(\"newest\", trainer.args.name)' | " .. "YOLOTRAIN_CONFIG_DIR='%s' '%s' attach",
        cfgdir,
        helpers.yolotrain
      )
    )
    assert.is_true(ok, out)
    assert.matches("newest\tbypid", out, 1, true)
    ok, _, out =
      helpers.run(string.format("echo 1 | YOLOTRAIN_CONFIG_DIR='%s' '%s' attach 1", cfgdir, helpers.yolotrain))
    assert.is_false(ok)
    assert.matches("process 1 serves no attach socket", out, 1, true)
    assert.is_true(wait_gone(dir .. "/runs/detect/bypid/attach.sock", 120))
  end)
end)

describe("the control socket", function()
  it("is created 0600, replaces a stale socket of ours, and is removed on close", function()
    local dir = helpers.tmpdir()
    local path = dir .. "/attach.sock"
    local s = yt.control.serve(path)
    local ok, _, mode = helpers.run(string.format("stat -c %%a '%s'", path))
    assert.is_true(ok)
    assert.are.equal("600", mode:match("%d+"))
    assert.has_error(function() yt.control.serve(path) end, path .. " is in use: another training serves it")
    -- a socket whose server died (kill -9) is stale: the next server takes its place
    os.execute(
      string.format(
        "/usr/bin/python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.bind('%s')\"",
        dir .. "/stale.sock"
      )
    )
    local s2 = yt.control.serve(dir .. "/stale.sock")
    assert.is_truthy(s2:path())
    s2:close()
    assert.is_nil(yt.sys.stat(dir .. "/stale.sock"))
    s:close()
    assert.is_nil(yt.sys.stat(path))
  end)

  it("refuses a path that is not a socket, and serves and connects through a long path", function()
    local dir = helpers.tmpdir()
    helpers.write_file(dir .. "/attach.sock", "not a socket")
    assert.has_error(
      function() yt.control.serve(dir .. "/attach.sock") end,
      dir .. "/attach.sock exists and is not a socket: refusing to serve the attach socket there"
    )
    assert.are.equal("not a socket", helpers.read_file(dir .. "/attach.sock"))
    local long = dir .. "/" .. string.rep("d", 120)
    os.execute("mkdir -p '" .. long .. "'")
    local s = yt.control.serve(long .. "/attach.sock")
    assert.are.equal(yt.sys.getpid(), yt.control.peer_pid(long .. "/attach.sock"))
    s:close()
  end)

  it("refuses another user's socket on both sides, and another user cannot connect to ours", function()
    local ok = helpers.run('[ "$(id -u)" = 0 ] && command -v setpriv && id nobody')
    if not ok then
      pending("needs root and the user nobody to act as a second uid")
      return
    end
    local dir = helpers.tmpdir()
    os.execute("chmod 755 '" .. dir .. "' && chmod o+x \"$(dirname '" .. dir .. "')\"")
    -- a socket of nobody's: the training will not serve over it, the client will not attach to it
    local theirs = dir .. "/theirs.sock"
    assert.is_true(
      helpers.run(
        string.format(
          "chmod 777 '%s' && setpriv --reuid=nobody --regid=nogroup --clear-groups "
            .. "/usr/bin/python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.bind('%s')\"",
          dir,
          theirs
        )
      )
    )
    assert.has_error(function() yt.control.serve(theirs) end)
    local ok2, _, out = helpers.run(string.format("echo 1 | '%s' attach '%s'", helpers.yolotrain, theirs))
    assert.is_false(ok2)
    assert.matches("is not an attach socket of yours", out, 1, true)
    -- ours, as nobody: the 0600 mode keeps them out
    local s = yt.control.serve(dir .. "/ours.sock")
    local ok3, _, out3 = helpers.run(
      string.format(
        "setpriv --reuid=nobody --regid=nogroup --clear-groups "
          .. "/usr/bin/python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('%s/ours.sock')\"",
        dir
      )
    )
    assert.is_false(ok3)
    assert.matches("Permission denied", out3, 1, true)
    assert.is_nil(s:poll()) -- nobody reached the server
    s:close()
  end)
end)
