-- The `yolotrain` executable (recipes, -e, the REPL, Ctrl-C) and yt.sys.
local helpers = require("helpers")
local yt = require("yolotrain.core")

local exe = helpers.yolotrain

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Writes a recipe into a fresh directory and returns its path.
local function recipe(code, name)
  local path = helpers.tmpdir() .. "/" .. (name or "recipe.lua")
  helpers.write_file(path, code)
  return path
end

-- Runs yolotrain with the given shell-quoted argument string, stdin from a string (never a terminal).
local function yolotrain(args, stdin)
  local input = helpers.tmpdir() .. "/stdin.txt"
  helpers.write_file(input, stdin or "")
  return helpers.run(sh_quote(exe) .. " " .. args .. " < " .. sh_quote(input))
end

local function lines_of(s)
  local t = {}
  for line in s:gmatch("([^\n]*)\n") do
    t[#t + 1] = line
  end
  return t
end

local function has_line(out, expected)
  for _, line in ipairs(lines_of(out)) do
    if line == expected then return true end
  end
  return false
end

describe("yolotrain executable", function()
  it("exists", function()
    local f = io.open(exe, "rb")
    assert.is_truthy(f, "no executable at " .. exe .. " (set YT_BUILD_DIR)")
    f:close()
  end)

  it("answers help, version and checks as Ultralytics' yolo does, and lists only what exists", function()
    local ok, rc, out = yolotrain("help")
    assert.is_true(ok, out)
    assert.truthy(out:find("MODE  train | val | predict | export", 1, true), out)
    ok, rc, out = yolotrain("version")
    assert.is_true(ok, out)
    assert.are.equal(yt.version .. "\n", out)
    ok, rc, out = yolotrain("checks")
    assert.is_true(ok, out)
    for _, label in ipairs({ "yolotrain", "Lua", "CPU", "CPU features", "threads", "precision", "convolutions" }) do
      assert.truthy(out:find("\n" .. label .. " +%S") or out:find("^" .. label .. " +%S"), label .. ":\n" .. out)
    end
    ok, rc, out = yolotrain("--help")
    assert.is_true(ok, out)
    assert.is_nil(out:find("segment", 1, true), "--help lists a task that does not exist:\n" .. out)
    assert.is_nil(out:find("benchmark", 1, true), out)
    ok, rc, out = yolotrain("track source=x.mp4")
    assert.are.equal(1, rc)
    assert.truthy(
      out:find("mode 'track' is not supported: yolotrain implements train, val, predict, export", 1, true),
      out
    )
  end)

  describe("recipes", function()
    it("sets arg and ... as the lua interpreter does", function()
      local r = recipe([[
print("n", #arg, select("#", ...))
print("argv", arg[-1] ~= nil, arg[0]:match("[^/]*$"), arg[1], arg[2], arg[3])
print("dots", ...)
]])
      local ok, rc, out = yolotrain(sh_quote(r) .. " a 'b c' k=v")
      assert.is_true(ok, out)
      assert.are.equal(0, rc)
      assert.is_true(has_line(out, "n\t3\t3"), out)
      assert.is_true(has_line(out, "argv\ttrue\trecipe.lua\ta\tb c\tk=v"), out)
      assert.is_true(has_line(out, "dots\ta\tb c\tk=v"), out)
    end)

    it("puts the interpreter and its options at negative indices", function()
      local r = recipe('print(arg[-3]:match("[^/]*$"), arg[-2], arg[-1], arg[0]:match("[^/]*$"), arg[1])')
      local ok, _, out = yolotrain("-e 'x = 1' " .. sh_quote(r) .. " q")
      assert.is_true(ok, out)
      assert.is_true(has_line(out, "yolotrain\t-e\tx = 1\trecipe.lua\tq"), out)
    end)

    it("finds the engine's Lua modules: require('yolotrain') is the core module and sets no globals", function()
      local r = recipe([[
local before = {}
for k in pairs(_G) do before[k] = true end
local yt = require("yolotrain")
assert(yt == require("yolotrain.core"), "not the core module")
assert(type(yt.sys) == "table" and type(yt.zeros) == "function")
for k in pairs(_G) do assert(before[k], "new global " .. k) end
print("ok", yt.version)
]])
      local ok, _, out = yolotrain(sh_quote(r))
      assert.is_true(ok, out)
      assert.is_true(has_line(out, "ok\t" .. yt.version), out)
    end)

    it("searches $YOLOTRAIN_LUA_PATH first", function()
      local dir = helpers.tmpdir()
      assert(os.execute("mkdir -p " .. sh_quote(dir .. "/yolotrain/probe")))
      helpers.write_file(dir .. "/yolotrain/probe/init.lua", 'return "from probe init"')
      local ok, _, out = helpers.run(
        "YOLOTRAIN_LUA_PATH=/nonexistent:"
          .. sh_quote(dir)
          .. " "
          .. sh_quote(exe)
          .. [[ -e 'print((require("yolotrain.probe"))); print(require("yolotrain") == require("yolotrain.core"))' </dev/null]]
      )
      assert.is_true(ok, out)
      assert.is_true(has_line(out, "from probe init"), out)
      assert.is_true(has_line(out, "true"), out)
    end)

    it("reports a Lua error with the recipe's file:line and a traceback, exit 1", function()
      local r = recipe("local x = 1\n\nerror('boom in recipe')\n")
      local ok, rc, out = yolotrain(sh_quote(r))
      assert.is_false(ok)
      assert.are.equal(1, rc)
      assert.is_truthy(out:find("yolotrain: " .. r .. ":3: boom in recipe", 1, true), out)
      assert.is_truthy(out:find("stack traceback:", 1, true), out)
    end)

    it("reports a core error raised from a recipe with its line", function()
      local r = recipe("local yt = require('yolotrain')\nlocal t = yt.zeros({2, 3})\nt:free()\nprint(t + 1)\n")
      local ok, rc, out = yolotrain(sh_quote(r))
      assert.is_false(ok)
      assert.are.equal(1, rc)
      assert.is_truthy(out:find("yolotrain: " .. r .. ":4:", 1, true), out)
    end)

    it("shows error objects that are not strings", function()
      local r = recipe("error(setmetatable({}, { __tostring = function() return 'custom error object' end }))")
      local _, rc, out = yolotrain(sh_quote(r))
      assert.are.equal(1, rc)
      assert.is_truthy(out:find("yolotrain: custom error object", 1, true), out)
      local _, rc2, out2 = yolotrain("-e 'error({})'")
      assert.are.equal(1, rc2)
      assert.is_truthy(out2:find("(error object is a table value)", 1, true), out2)
    end)

    it("reports a syntax error as file:line, exit 1", function()
      local r = recipe("print('fine')\nlocal = 3\n")
      local ok, rc, out = yolotrain(sh_quote(r))
      assert.is_false(ok)
      assert.are.equal(1, rc)
      assert.is_truthy(out:find("yolotrain: " .. r .. ":2:", 1, true), out)
      assert.is_falsy(out:find("fine", 1, true), "nothing runs before the syntax error is reported")
    end)

    it("reports a missing recipe, exit 1", function()
      local missing = helpers.tmpdir() .. "/no_such_recipe.lua"
      local ok, rc, out = yolotrain(sh_quote(missing))
      assert.is_false(ok)
      assert.are.equal(1, rc)
      assert.is_truthy(out:find("cannot open " .. missing, 1, true), out)
    end)

    it("refuses a directory as a recipe, exit 1", function()
      local ok, rc, out = yolotrain(sh_quote(helpers.tmpdir()))
      assert.is_false(ok)
      assert.are.equal(1, rc)
      assert.is_truthy(out:find("is a directory", 1, true), out)
    end)

    it("interrupts a recipe that receives SIGINT: 'interrupted' at the running line, exit 130", function()
      local r = recipe([[
local yt = require("yolotrain")
os.execute("(sleep 0.3; kill -INT " .. yt.sys.getpid() .. ") &")
local t0, n = yt.sys.time(), 0
while yt.sys.time() - t0 < 20 do n = n + 1 end
print("not interrupted")
]])
      local ok, rc, out = yolotrain(sh_quote(r))
      assert.is_false(ok)
      assert.are.equal(130, rc, out)
      assert.is_truthy(out:find("yolotrain: " .. r .. ":4: interrupted", 1, true), out)
      assert.is_falsy(out:find("not interrupted", 1, true), out)
    end)
  end)

  describe("options", function()
    it("runs several -e in order, then the recipe", function()
      local r = recipe("print('recipe sees', x)")
      local ok, _, out = yolotrain("-e 'x = 20' -e 'x = x + 1; print(x)' " .. sh_quote(r))
      assert.is_true(ok, out)
      assert.is_truthy(out:find("21\nrecipe sees\t21\n", 1, true), out)
    end)

    it("-l requires a module into a global", function()
      local ok, _, out = yolotrain("-l Y=yolotrain -e 'print(Y == require(\"yolotrain.core\"))'")
      assert.is_true(ok, out)
      assert.is_true(has_line(out, "true"), out)
    end)

    it("stops at the first -e that fails", function()
      local ok, rc, out = yolotrain("-e 'error(\"first\")' -e 'print(\"second\")'")
      assert.is_false(ok)
      assert.are.equal(1, rc)
      assert.is_truthy(out:find("first", 1, true))
      assert.is_falsy(out:find("second", 1, true))
    end)

    it("--version prints yolotrain's and Lua's versions", function()
      for _, flag in ipairs({ "--version", "-v" }) do
        local ok, _, out = yolotrain(flag)
        assert.is_true(ok, out)
        assert.is_truthy(out:match("^yolotrain " .. yt.version:gsub("%.", "%%.") .. " %(Lua 5%.4[%.%d]*%)\n$"), out)
      end
    end)

    it("--help lists every form", function()
      local ok, _, out = yolotrain("--help")
      assert.is_true(ok, out)
      for _, s in ipairs({
        "usage: yolotrain",
        "recipe.lua",
        "-e code",
        "-i",
        "-l",
        "--version",
        "detect train",
        "train|val|predict",
        "YOLOTRAIN_LUA_PATH",
        "130",
      }) do
        assert.is_truthy(out:find(s, 1, true), "help lacks " .. s)
      end
      local ok2, _, out2 = yolotrain("-h")
      assert.is_true(ok2)
      assert.are.equal(out, out2)
    end)

    it("rejects an unknown option and a missing -e argument, exit 1", function()
      local ok, rc, out = yolotrain("--frobnicate")
      assert.is_false(ok)
      assert.are.equal(1, rc)
      assert.is_truthy(out:find("unrecognised option '--frobnicate'", 1, true), out)
      ok, rc, out = yolotrain("-e")
      assert.are.equal(1, rc)
      assert.is_truthy(out:find("'-e' needs an argument", 1, true), out)
    end)

    it("runs standard input as a chunk when it is not a terminal", function()
      local ok, _, out = yolotrain("", "print('from stdin', arg[0] ~= nil)\n")
      assert.is_true(ok, out)
      assert.is_true(has_line(out, "from stdin\ttrue"), out)
      ok, _, out = yolotrain("- x y", "print(arg[0], ...)\n")
      assert.is_true(ok, out)
      assert.is_true(has_line(out, "-\tx\ty"), out)
    end)
  end)

  describe("commands", function()
    local function fake_front_end(body)
      local dir = helpers.tmpdir()
      assert(os.execute("mkdir -p " .. sh_quote(dir .. "/yolotrain/cfg")))
      helpers.write_file(dir .. "/yolotrain/cfg/cli.lua", body)
      return "YOLOTRAIN_LUA_PATH=" .. sh_quote(dir) .. " " .. sh_quote(exe)
    end

    it("hands `[task] mode k=v ...` to yolotrain.cfg.cli.main with the arguments", function()
      local cmd = fake_front_end([[
return { main = function(args)
  print("cli.main", #args, table.concat(args, "|"))
  return tonumber(args[#args]:match("code=(%d+)") or 0)
end }
]])
      local ok, rc, out = helpers.run(cmd .. " detect train epochs=3 'lr0 = 0.1' code=0 </dev/null")
      assert.is_true(ok, out)
      assert.is_true(has_line(out, "cli.main\t5\tdetect|train|epochs=3|lr0 = 0.1|code=0"), out)
      ok, rc, out = helpers.run(cmd .. " val code=7 </dev/null")
      assert.are.equal(7, rc)
      assert.is_true(has_line(out, "cli.main\t2\tval|code=7"), out)
      ok, rc, out = helpers.run(cmd .. " predict code=0 </dev/null")
      assert.are.equal(0, rc)
    end)

    it("reports an error from the front end, exit 1", function()
      local cmd = fake_front_end("return { main = function(args) error('bad key epochz') end }")
      local ok, rc, out = helpers.run(cmd .. " train epochz=3 </dev/null")
      assert.is_false(ok)
      assert.are.equal(1, rc)
      assert.is_truthy(out:find("bad key epochz", 1, true), out)
    end)
  end)

  describe("REPL with piped input (-i)", function()
    it("prints the values of expressions, all of them, with tostring", function()
      local ok, _, out = yolotrain("-i", "1 + 1\n'a', nil, 3\nx = 5\nx * 2\n")
      assert.is_true(ok, out)
      assert.are.same({ "2", "a\tnil\t3", "10" }, lines_of(out))
    end)

    it("prints a tensor as its shape and a preview", function()
      local ok, _, out = yolotrain("-i", "yt.zeros({2, 3})\n")
      assert.is_true(ok, out)
      local line = lines_of(out)[1] or ""
      assert.is_truthy(line:match("^tensor") and line:find("2") and line:find("3") and line:find("float32"), out)
    end)

    it("reads a multi-line definition until it is complete", function()
      local ok, _, out = yolotrain("-i", "function f(x)\n  local y = x * 2\n  return y\nend\nf(21)\n{ 1,\n2 }\n")
      assert.is_true(ok, out)
      local l = lines_of(out)
      assert.are.equal("42", l[1], out)
      assert.are.equal("{ 1, 2 }", l[2], out) -- tables are shown as values (yolotrain.repl.repr)
    end)

    it("prints an error with a traceback and carries on", function()
      local ok, rc, out = yolotrain("-i", "error('oops')\nprint('after the error')\nlocal = 1\n'still'\n")
      assert.is_true(ok, out)
      assert.are.equal(0, rc)
      assert.is_truthy(out:find("stdin:1: oops", 1, true), out)
      assert.is_truthy(out:find("stack traceback:", 1, true), out)
      assert.is_true(has_line(out, "after the error"), out)
      assert.is_truthy(out:find("stdin:1: <name> expected near '='", 1, true), out)
      assert.is_true(has_line(out, "still"), out)
    end)

    it("reports input that ends inside an unfinished entry", function()
      local ok, _, out = yolotrain("-i", "print('before')\nfor i = 1, 3 do\n")
      assert.is_true(ok, out)
      assert.is_true(has_line(out, "before"), out)
      assert.is_truthy(out:find("'end' expected", 1, true), out)
    end)

    it("runs after the recipe, with the recipe's globals", function()
      local r = recipe("answer = 42")
      local ok, _, out = yolotrain("-i " .. sh_quote(r), "answer + 1\n")
      assert.is_true(ok, out)
      assert.are.same({ "43" }, lines_of(out))
    end)

    it("Ctrl-C interrupts the running entry, not the REPL", function()
      local input = [[
os.execute("(sleep 0.3; kill -INT " .. yt.sys.getpid() .. ") &"); local t = yt.sys.time(); while yt.sys.time() - t < 20 do end
print("still here")
]]
      local ok, rc, out = yolotrain("-i", input)
      assert.is_true(ok, out)
      assert.are.equal(0, rc)
      assert.is_truthy(out:find("stdin:1: interrupted", 1, true), out)
      assert.is_true(has_line(out, "still here"), out)
    end)
  end)

  describe("yt.sys.repl (interactive training)", function()
    local script = [[
local yt = require("yolotrain")
local trainer = { epoch = 3, args = { lr0 = 0.01 } }
local env = { trainer = trainer }
local r = yt.sys.repl(env, "paused at epoch 3")
print("result", r, trainer.args.lr0, env.x, rawget(_G, "x"))
]]

    it("evaluates in the given environment and returns 'stop' from stop()", function()
      local ok, _, out = yolotrain(
        sh_quote(recipe(script)),
        "trainer.epoch\ntrainer.args.lr0 = 0.5\nx = 7\ntype(print)\nstop()\nprint('not reached')\n"
      )
      assert.is_true(ok, out)
      assert.are.same({ "paused at epoch 3", "3", "function", "result\tstop\t0.5\t7\tnil" }, lines_of(out))
    end)

    it("returns 'cont' from cont() and at end of input", function()
      local ok, _, out = yolotrain(sh_quote(recipe(script)), "cont()\n")
      assert.is_true(ok, out)
      assert.is_true(has_line(out, "result\tcont\t0.01\tnil\tnil"), out)
      ok, _, out = yolotrain(sh_quote(recipe(script)), "")
      assert.is_true(ok, out)
      assert.is_true(has_line(out, "result\tcont\t0.01\tnil\tnil"), out)
    end)

    it("carries on after an error in an entry", function()
      local ok, _, out = yolotrain(sh_quote(recipe(script)), "trainer.nothing.here\n1 + 1\nstop()\n")
      assert.is_true(ok, out)
      assert.is_truthy(out:find("attempt to index a nil value", 1, true), out)
      assert.is_true(has_line(out, "2"), out)
      assert.is_true(has_line(out, "result\tstop\t0.01\tnil\tnil"), out)
    end)
  end)

  describe("yt.sys interrupt handler", function()
    it("counts Ctrl-C presses without stopping the Lua code", function()
      local r = recipe([[
local yt = require("yolotrain")
assert(yt.sys.install_interrupt_handler() == true)
assert(yt.sys.install_interrupt_handler() == false, "second install is a no-op")
local function kill() io.popen("kill -INT " .. yt.sys.getpid()):close() end
local function wait_for(n)
  local t = yt.sys.time()
  while yt.sys.interrupt_count() < n and yt.sys.time() - t < 10 do end
end
kill(); wait_for(1)
print("count", yt.sys.interrupt_count())
kill(); wait_for(2)
print("interrupted", yt.sys.interrupted())
print("after", yt.sys.interrupted())
assert(yt.sys.restore_interrupt_handler() == true)
print("restored", yt.sys.restore_interrupt_handler())
]])
      local ok, rc, out = yolotrain(sh_quote(r))
      assert.is_true(ok, out)
      assert.are.same({ "count\t1", "interrupted\ttrue\t2", "after\tfalse\t0", "restored\tfalse" }, lines_of(out))
    end)

    it("the third Ctrl-C interrupts Lua code that never reaches a step boundary", function()
      local r = recipe([[
local yt = require("yolotrain")
yt.sys.install_interrupt_handler()
local pid = yt.sys.getpid()
os.execute("(for i in 1 2 3; do sleep 0.2; kill -INT " .. pid .. "; done) &")
local t = yt.sys.time()
while yt.sys.time() - t < 20 do end
print("not interrupted")
]])
      local ok, rc, out = yolotrain(sh_quote(r))
      assert.is_false(ok)
      assert.are.equal(130, rc, out)
      assert.is_truthy(out:find(":6: interrupted", 1, true), out)
    end)
  end)
end)

describe("yt.sys", function()
  local sys = yt.sys

  it("time() is monotonic seconds", function()
    local a = sys.time()
    local b = sys.time()
    assert.is_number(a)
    assert.is_true(b >= a)
    assert.is_true(a > 0)
  end)

  it("getpid, nproc, rss", function()
    assert.is_true(math.type(sys.getpid()) == "integer" and sys.getpid() > 1)
    assert.is_true(sys.nproc() >= 1)
    local before = sys.rss()
    assert.is_true(before > 1024 * 1024, "rss " .. tostring(before))
    local big = yt.ones({ 32, 1024, 1024 }) -- 128 MB touched
    assert.is_true(sys.rss() > before + 100 * 1024 * 1024)
    big:free()
  end)

  it("set_num_threads / get_num_threads", function()
    local n = sys.get_num_threads()
    sys.set_num_threads(1)
    assert.are.equal(1, sys.get_num_threads())
    sys.set_num_threads(n)
    assert.are.equal(n, sys.get_num_threads())
    assert.has_error(function() sys.set_num_threads(0) end)
  end)

  it("conv_backend: the default runs every pass on oneDNN when oneDNN's ISA is AVX-512, and says the ISA", function()
    local b, isa = sys.conv_backend()
    assert.is_string(isa)
    assert.is_nil(isa:find("cpu_isa_", 1, true), isa)
    if (sys.getenv("YT_CONV") or "") == "" then
      assert.are.equal(isa:find("^avx512_core") and "dnnl_all" or "dnnl", b, isa)
    end
    -- oneDNN's avx512_core needs AVX-512 F, BW, VL and DQ; without a lower ONEDNN_MAX_CPU_ISA it takes them
    local f = io.open("/proc/cpuinfo", "r")
    if f and (sys.getenv("ONEDNN_MAX_CPU_ISA") or "") == "" then
      local flags = " " .. (f:read("a"):match("\nflags%s*:%s*([^\n]+)") or "") .. " "
      local has = true
      for _, flag in ipairs({ "avx512f", "avx512bw", "avx512vl", "avx512dq" }) do
        has = has and flags:find(" " .. flag .. " ", 1, true) ~= nil
      end
      assert.are.equal(has, isa:find("^avx512_core") ~= nil, isa .. " on a CPU with" .. flags)
    end
    if f then f:close() end
  end)

  it("conv_backend / set_conv_backend: the three backends give one convolution within float rounding", function()
    local default = sys.conv_backend()
    local x, w = yt.randn({ 2, 8, 12, 12 }), yt.randn({ 6, 8, 3, 3 })
    local ys, gs = {}, {}
    for _, b in ipairs({ "gemm", "dnnl", "dnnl_all" }) do
      sys.set_conv_backend(b)
      assert.are.equal(b, sys.conv_backend())
      local xi = x:clone():requires_grad_()
      local y = yt.nn.conv2d(xi, w, nil, 1, 1)
      yt.backward(y, yt.ones(y:shape()))
      ys[b], gs[b] = y, xi.grad
    end
    sys.set_conv_backend(nil)
    assert.are.equal(default, sys.conv_backend())
    assert.are.equal(0, (ys.gemm - ys.dnnl):abs():max():item()) -- dnnl's forward is the GEMM path's
    assert.is_true((ys.gemm - ys.dnnl_all):abs():max():item() < 1e-4)
    assert.is_true((gs.gemm - gs.dnnl):abs():max():item() < 1e-4)
    assert.is_true((gs.gemm - gs.dnnl_all):abs():max():item() < 1e-4)
    assert.has_error(
      function() sys.set_conv_backend("blas") end,
      "conv backend 'blas': expected gemm, dnnl or dnnl_all"
    )
  end)

  it("mkdir_p, listdir (sorted), stat, rename, realpath", function()
    local root = helpers.tmpdir()
    local deep = root .. "/a/b/c"
    assert.is_true(sys.mkdir_p(deep))
    assert.is_true(sys.mkdir_p(deep .. "/")) -- exists already: fine
    assert.is_true(sys.stat(deep).is_dir)
    for _, n in ipairs({ "zeta.txt", "alpha.txt", "Mid.txt" }) do
      helpers.write_file(deep .. "/" .. n, "12345")
    end
    assert.are.same({ "Mid.txt", "alpha.txt", "zeta.txt" }, sys.listdir(deep))
    local st = sys.stat(deep .. "/alpha.txt")
    assert.are.same({ 5, false }, { st.size, st.is_dir })
    assert.is_true(math.abs(st.mtime - os.time()) < 60)
    assert.is_true(sys.rename(deep .. "/alpha.txt", deep .. "/zeta.txt"))
    assert.are.same({ "Mid.txt", "zeta.txt" }, sys.listdir(deep))
    assert.are.equal(deep .. "/zeta.txt", sys.realpath(root .. "/a/./b/../b/c/zeta.txt"))
    local none, msg = sys.stat(root .. "/missing")
    assert.is_nil(none)
    assert.is_truthy(msg:find("No such file", 1, true))
    assert.is_nil((sys.listdir(root .. "/missing")))
    assert.is_nil((sys.rename(root .. "/missing", root .. "/x")))
    helpers.write_file(root .. "/file", "x")
    local ok, err = sys.mkdir_p(root .. "/file/sub")
    assert.is_nil(ok)
    assert.is_truthy(err:find("Not a directory", 1, true), err)
  end)

  it("getenv / setenv", function()
    assert.is_true(sys.setenv("YT_CLI_SPEC_VAR", "v1"))
    assert.are.equal("v1", sys.getenv("YT_CLI_SPEC_VAR"))
    assert.are.equal("v1", os.getenv("YT_CLI_SPEC_VAR"))
    sys.setenv("YT_CLI_SPEC_VAR", nil)
    assert.is_nil(sys.getenv("YT_CLI_SPEC_VAR"))
  end)

  it("isatty takes a descriptor or a file", function()
    local f = io.tmpfile()
    assert.is_false(sys.isatty(f))
    f:close()
    assert.is_boolean(sys.isatty(0))
    assert.has_error(function() sys.isatty(f) end)
  end)
end)
