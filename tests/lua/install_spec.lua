-- `cmake --install` gives a relocatable tree: installed into a temporary prefix and then moved elsewhere, it runs
-- the quick start from another working directory, and (under strace) touches nothing in the source or build tree.
local yt = require("yolotrain.core")
local utils = require("yolotrain.utils")
local helpers = require("helpers")

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function exists(p) return yt.sys.stat(p) ~= nil end

-- The trees the installed binary must leave alone, with and without symlinks resolved (strace shows both forms).
local function forbidden_roots()
  local roots = {}
  for _, p in ipairs({ helpers.repo_dir, helpers.build_dir }) do
    roots[#roots + 1] = utils.normalize(p)
    roots[#roots + 1] = yt.sys.realpath(p)
  end
  return roots
end

local function under(path, root) return path == root or path:sub(1, #root + 1) == root .. "/" end

-- Every path a strace line names: the fd annotations of -y (<path>) and the string arguments, a relative one
-- resolved against the directory fd before it (AT_FDCWD</cwd>, or 3</dir>) or else the working directory.
local function paths_of(line, cwd)
  local out = {}
  for p in line:gmatch("<(/[^>]*)>") do
    out[#out + 1] = p
  end
  for prefix, s in line:gmatch('([^"]-)"([^"]*)"') do
    if s:sub(1, 1) == "/" then
      out[#out + 1] = utils.normalize(s)
    elseif s ~= "" then
      local base = prefix:match("<(/[^>]*)>,%s*$") or cwd
      out[#out + 1] = utils.normalize(base .. "/" .. s)
    end
  end
  return out
end

local WRITE_CALL = {
  mkdir = true,
  mkdirat = true,
  rename = true,
  renameat = true,
  renameat2 = true,
  unlink = true,
  unlinkat = true,
  rmdir = true,
  link = true,
  linkat = true,
  symlink = true,
  symlinkat = true,
  truncate = true,
  chmod = true,
  fchmodat = true,
  chown = true,
  fchownat = true,
  utimensat = true,
  mknodat = true,
}

-- The strace lines (file system calls) that name a path under one of roots; and those of them that write.
local function violations(log, roots, cwd)
  local touched, written = {}, {}
  for line in log:gmatch("[^\n]+") do
    local hit = false
    for _, p in ipairs(paths_of(line, cwd)) do
      for _, r in ipairs(roots) do
        if under(p, r) then hit = true end
      end
    end
    if hit then
      touched[#touched + 1] = line
      local call = line:match("^%d+%s+([%w_]+)%(")
      if
        WRITE_CALL[call]
        or line:find("O_WRONLY", 1, true)
        or line:find("O_RDWR", 1, true)
        or line:find("O_CREAT", 1, true)
      then
        written[#written + 1] = line
      end
    end
  end
  return touched, written
end

-- The files under dir whose names match one of the shell patterns, as paths relative to dir (the generated
-- datasets of older checkouts left out).
local function files_under(dir, patterns)
  local names = {}
  for _, p in ipairs(patterns) do
    names[#names + 1] = "-name " .. sh_quote(p)
  end
  local h = assert(
    io.popen(
      string.format(
        "cd %s && find . -type d -name generated -prune -o -type f \\( %s \\) -print",
        sh_quote(dir),
        table.concat(names, " -o ")
      )
    )
  )
  local out = {}
  for line in h:lines() do
    out[#out + 1] = line:sub(3)
  end
  h:close()
  return out
end

describe("cmake --install", function()
  local root, prefix, moved, work, env, strace_log

  lazy_setup(function()
    root = yt.sys.realpath(helpers.tmpdir())
    assert(not under(root, yt.sys.realpath(helpers.repo_dir)), "the temporary folder is inside the source tree")
    prefix, moved, work = root .. "/prefix", root .. "/elsewhere/yolotrain", root .. "/work"
    local ok, _, out =
      helpers.run("cmake --install " .. sh_quote(helpers.build_dir) .. " --prefix " .. sh_quote(prefix))
    assert(ok, "cmake --install failed:\n" .. out)
    assert(
      os.execute(
        string.format(
          "mkdir -p %s %s && mv %s %s",
          sh_quote(root .. "/elsewhere"),
          sh_quote(work),
          sh_quote(prefix),
          sh_quote(moved)
        )
      )
    )
    -- nothing from the caller's environment may point the binary at a checkout, nor at the user's settings
    env = "env -u YOLOTRAIN_LUA_PATH -u LUA_PATH -u LUA_PATH_5_4 -u LUA_CPATH -u LUA_CPATH_5_4 -u LUA_INIT "
      .. "-u LUA_INIT_5_4 -u XDG_CONFIG_HOME "
      .. string.format(
        "HOME=%s YOLOTRAIN_CONFIG_DIR=%s XDG_DATA_HOME=%s ",
        sh_quote(root .. "/home"),
        sh_quote(root .. "/config"),
        sh_quote(root .. "/data")
      )
    strace_log = root .. "/strace.log"
    ok, _, out = helpers.run("strace -o /dev/null true")
    assert(ok, "strace cannot trace here (YT_TEST_DEPS=1 bash scripts/setup.sh installs it):\n" .. out)
  end)

  lazy_teardown(function()
    if root then os.execute("rm -rf " .. sh_quote(root)) end
  end)

  -- Runs the installed yolotrain with args from the work folder under strace. Returns ok, output, and the lines
  -- of the trace that touched the source or build tree, that wrote there, and that touched the first prefix.
  local function traced(args)
    os.remove(strace_log)
    local ok, _, out = helpers.run(
      string.format(
        "cd %s && %sstrace -f --seccomp-bpf -y -e trace=%%file -o %s %s %s",
        sh_quote(work),
        env,
        sh_quote(strace_log),
        sh_quote(moved .. "/bin/yolotrain"),
        args
      )
    )
    local log = helpers.read_file(strace_log)
    local touched, written = violations(log, forbidden_roots(), work)
    local old_prefix = violations(log, { prefix }, work)
    return ok, out, touched, written, old_prefix
  end

  local function assert_clean(touched, written, old_prefix)
    assert(#written == 0, "wrote into the source or build tree:\n" .. table.concat(written, "\n"))
    assert(#touched == 0, "looked into the source or build tree:\n" .. table.concat(touched, "\n"))
    assert(#old_prefix == 0, "looked for the prefix it was installed into:\n" .. table.concat(old_prefix, "\n"))
  end

  it("finds reads, writes and relative paths under a tree in a trace", function()
    local log = table.concat({
      '7 openat(AT_FDCWD</tmp/w>, "/src/lua/x.lua", O_RDONLY) = -1 ENOENT (No such file or directory)',
      '7 openat(AT_FDCWD</src/build>, "out.txt", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3</src/build/out.txt>',
      '8 mkdirat(3</tmp/w>, "../../src/datasets/generated", 0777) = 0',
      '8 newfstatat(AT_FDCWD</tmp/w>, "runs/detect", {st_mode=S_IFDIR|0755, ...}, 0) = 0',
      '8 openat(AT_FDCWD</tmp/w>, "/srcx/a", O_RDONLY) = 3</srcx/a>',
    }, "\n")
    local lines = {}
    for line in log:gmatch("[^\n]+") do
      lines[#lines + 1] = line
    end
    local touched, written = violations(log, { "/src" }, "/tmp/w")
    assert.are.same({ lines[1], lines[2], lines[3] }, touched) -- not /srcx, nor a relative path that stays put
    assert.are.same({ lines[2], lines[3] }, written)
  end)

  it("lays out the GNUInstallDirs tree with every engine, model, generator, recipe and doc file", function()
    for _, f in ipairs({
      "bin/yolotrain",
      "lib/yolotrain/lua/yolotrain/core.so",
      "share/doc/yolotrain/README.md",
      "share/doc/yolotrain/cli.md",
    }) do
      assert(exists(moved .. "/" .. f), "not installed: " .. f)
    end
    -- source folder -> installed folder: files are installed by pattern, so every new one must come along
    local trees = {
      { "lua/yolotrain", "share/yolotrain/lua/yolotrain", { "*.lua", "*.yaml" } },
      { "datasets", "share/yolotrain/datasets", { "*.lua" } },
      { "recipes", "share/yolotrain/recipes", { "*.lua", "*.yaml" } },
    }
    local n = 0
    for _, t in ipairs(trees) do
      for _, rel in ipairs(files_under(helpers.repo_dir .. t[1], t[3])) do
        local installed = moved .. "/" .. t[2] .. "/" .. rel
        assert(exists(installed), "not installed: " .. t[1] .. "/" .. rel)
        assert(
          helpers.read_file(installed) == helpers.read_file(helpers.repo_dir .. t[1] .. "/" .. rel),
          "differs from the source: " .. installed
        )
        n = n + 1
      end
    end
    assert(exists(moved .. "/share/yolotrain/lua/yolotrain/cfg/models/v8/yolov8.yaml"), "model YAMLs missing")
    assert(exists(moved .. "/share/yolotrain/datasets/shapes.lua"), "the shapes generator is missing")
    assert(n > 40, "too few files compared: " .. n)
  end)

  it("compiles in no path of the source or build tree", function()
    -- debug information names the sources by design (`cmake --install --strip` leaves it out): check the rest
    local stripped = root .. "/yolotrain.stripped"
    local ok, _, out = helpers.run("strip -o " .. sh_quote(stripped) .. " " .. sh_quote(moved .. "/bin/yolotrain"))
    assert(ok, out)
    local binary = helpers.read_file(stripped)
    -- a sanitizer's runtime metadata names each instrumented source file, for its reports
    local cache = helpers.read_file(helpers.build_dir .. "/CMakeCache.txt")
    local sanitized = cache:find("\nYT_SANITIZE:BOOL=ON")
      or cache:find("\nYT_TSAN:BOOL=ON")
      or cache:find("\nYT_FUZZ:BOOL=ON")
    for _, r in ipairs(forbidden_roots()) do
      local at = binary:find(r, 1, true)
      while at do
        local name = binary:match("^[^%z]*", at)
        assert(sanitized and name:match("%.[ch]$"), "the installed yolotrain names " .. name)
        at = binary:find(r, at + #name, true)
      end
    end
  end)

  it("answers version, checks and require from another folder, with the engine of the moved tree", function()
    local ok, out, touched, written, old = traced("version")
    assert(ok, out)
    assert.are.equal(yt.version .. "\n", out)
    assert_clean(touched, written, old)

    ok, out, touched, written, old = traced("checks")
    assert(ok, out)
    assert.truthy(out:find("\nengine +" .. moved:gsub("%p", "%%%0") .. "/share/yolotrain/lua\n"), out)
    assert_clean(touched, written, old)

    ok, out, touched, written, old = traced(
      [[-e 'local yt = require"yolotrain"; print(yt.version, ]]
        .. [[package.searchpath("yolotrain.cfg.cli", package.path))']]
    )
    assert(ok, out)
    assert.are.equal(yt.version .. "\t" .. moved .. "/share/yolotrain/lua/yolotrain/cfg/cli.lua\n", out)
    assert_clean(touched, written, old)
  end)

  it("trains the quick start recipe from another folder, touching nothing in the source or build tree", function()
    local ok, out, touched, written, old = traced(
      sh_quote(moved .. "/share/yolotrain/recipes/quickstart.lua")
        .. " epochs=1 imgsz=64 batch=8 workers=1 fraction=0.1 plots=false"
    )
    assert(ok, out)
    assert.truthy(
      out:find(
        "quickstart: mAP50 [%d.]+, mAP50%-95 [%d.]+; best weights: "
          .. "runs/detect/quickstart/weights/best%.safetensors\n"
      ),
      out
    )
    assert(exists(work .. "/runs/detect/quickstart/weights/best.safetensors"), out)
    -- data=shapes was generated by the installed generator into the datasets_dir setting
    assert(exists(root .. "/data/yolotrain/datasets/shapes/data.yaml"), out)
    assert_clean(touched, written, old)
  end)

  it("gives plain Lua hosts the engine and its C module", function()
    local lua_path = moved .. "/share/yolotrain/lua/?.lua;" .. moved .. "/share/yolotrain/lua/?/init.lua;;"
    local ok, _, out = helpers.run(
      string.format(
        "cd %s && %sLUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s",
        sh_quote(work),
        env,
        sh_quote(lua_path),
        sh_quote(moved .. "/lib/yolotrain/lua/?.so;;"),
        sh_quote(
          'local yt = require"yolotrain"; print(yt.version, package.searchpath("yolotrain.core", package.cpath))'
        )
      )
    )
    assert(ok, out)
    assert.are.equal(yt.version .. "\t" .. moved .. "/lib/yolotrain/lua/yolotrain/core.so\n", out)
  end)
end)
