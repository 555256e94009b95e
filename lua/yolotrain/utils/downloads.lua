-- Downloads as Ultralytics does them (its utils/downloads.py): named weights from the Ultralytics assets release,
-- datasets from a dataset YAML's `download:` URL. The transfer is io/download.c (libcurl), the unpacking
-- io/unpack.c (libarchive); this module decides where files go, draws the progress, retries, and turns a failure
-- into one message that says what to fetch by hand and where to put it.
--
--   local downloads = require("yolotrain.utils.downloads")
--   downloads.attempt_download_asset("yolov8n.pt")      -- a path: as given, in weights_dir, or downloaded there
--   downloads.safe_download(url, dest, { sha256 = hex })  -- dest complete, or an error; nothing at dest otherwise
--   downloads.unpack(archive, parent)                    -- the folder it gave (parent/<top folder> or <stem>)
--
-- YOLOTRAIN_ASSETS_URL (a mirror for sites without internet access) replaces the release download URL of the
-- Ultralytics assets repository: <mirror>/<file name> is fetched instead, for weights and datasets alike.
local yt = require("yolotrain.core")
local utils = require("yolotrain.utils")
local settings = require("yolotrain.utils.settings")
local Progress = require("yolotrain.utils.progress")

local M = {}

M.GITHUB_ASSETS_REPO = "ultralytics/assets"
M.GITHUB_RELEASES_URL = "https://github.com/" .. M.GITHUB_ASSETS_REPO .. "/releases/download"
-- the release Ultralytics 8.2 fetches its weights from (attempt_download_asset's default)
M.ASSETS_RELEASE = "v8.2.0"
M.MIRROR_ENV = "YOLOTRAIN_ASSETS_URL"
-- the YOLOv8 detection weights of Ultralytics' asset list (yolotrain implements the detect task)
M.ASSET_NAMES = {}
for k in ("nsmlx"):gmatch(".") do
  M.ASSET_NAMES[#M.ASSET_NAMES + 1] = "yolov8" .. k .. ".pt"
end
local IS_ASSET = {}
for _, n in ipairs(M.ASSET_NAMES) do
  IS_ASSET[n] = true
end

M.RETRIES = 2 -- further attempts after a failure that may pass (a timeout, a cut transfer, HTTP 5xx)
M.MIN_WEIGHTS_BYTES = 1e5 -- a smaller "weights" file is an error page, not weights (Ultralytics' min_bytes)
-- bound on what an archive may unpack to: UNPACK_RATIO times its own size, at least UNPACK_MIN_BYTES. Images
-- hardly compress and label text about 5:1, so real datasets stay far below it; a zip bomb does not.
M.UNPACK_RATIO = 200
M.UNPACK_MIN_BYTES = 64 * 1024 * 1024
M.ARCHIVE_SUFFIXES = { ".zip", ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2" }

-- Where messages go; replace to redirect.
M.log = function(msg)
  io.stdout:write(msg, "\n")
  io.stdout:flush()
end

-- A download or unpacking that failed: one message, without a position (the CLI prints it as one line).
local function fail(message) error(message, 0) end

function M.is_url(s) return type(s) == "string" and s:match("^https?://[^%s]+$") ~= nil end

-- The file name a URL ends in, without query or fragment.
function M.url_file(url)
  local path = url:gsub("[?#].*$", "")
  return path:match("([^/]+)$") or "download"
end

-- The URL to fetch: a release asset of the Ultralytics assets repository comes from the mirror when one is set.
function M.mirror(url)
  local base = os.getenv(M.MIRROR_ENV)
  if base == nil or base == "" then return url end
  local prefix = M.GITHUB_RELEASES_URL .. "/"
  if url:sub(1, #prefix) ~= prefix then return url end
  return (base:gsub("/+$", "")) .. "/" .. M.url_file(url)
end

local function lock_path(dest) return utils.join(utils.dirname(dest), "." .. utils.basename(dest) .. ".lock") end

-- One attempt: (true) or (false, message, transient).
local function attempt(url, dest, opts)
  local ok, started = pcall(yt.io.download_begin, url, dest, opts)
  if not ok then return false, utils.strip_where(started), false end
  local d <close> = started -- an error (Ctrl-C) in the loop still stops the transfer and removes the .partial
  local bar = opts.progress ~= false and Progress(0, io.stdout, { unit = "B" }) or nil
  local desc = utils.basename(dest)
  local state, msg, transient
  repeat
    state, msg, transient = d:poll(100)
    if bar then
      local got, total = d:progress()
      bar:set(got, desc, total)
    end
  until state ~= "running"
  if bar then bar:close() end
  if state == "done" then return true end
  return false, msg, transient
end

--- Downloads url to dest (its folder is created). opts: sha256 (hex digits, checked), progress (default true),
--- retries (default M.RETRIES), min_bytes, connect_timeout, stall_time, stall_bytes, max_bytes (io/download.h),
--- manual (what to tell the user to do by hand; default: put the file at dest). Another process downloading the
--- same dest is waited for. Returns dest; raises one message on failure, with nothing left at dest.
function M.safe_download(url, dest, opts)
  opts = opts or {}
  local source = M.mirror(url)
  utils.mkdir_p(utils.dirname(dest))
  local _lock <close> = yt.sys.lock(lock_path(dest)) -- luacheck: ignore 211 (held until the end of the scope)
  if utils.exists(dest) then return dest end -- another process finished it while this one waited
  M.log(string.format("Downloading %s to '%s'...", source, dest))
  local retries = opts.retries or M.RETRIES
  local ok, msg, transient
  for i = 0, retries do
    ok, msg, transient = attempt(source, dest, opts)
    if ok then break end
    if not transient or i == retries then break end
    M.log(string.format("WARNING: Download failure, retrying %d/%d %s... (%s)", i + 1, retries, source, msg))
    yt.sys.sleep(i + 1)
  end
  local size = ok and (yt.sys.stat(dest) or { size = 0 }).size
  if ok and opts.min_bytes and size < opts.min_bytes then
    os.remove(dest)
    ok, msg = false, string.format("%s: only %d bytes arrived, too few to be the file", source, size)
  end
  if not ok then
    local manual = opts.manual or string.format("put it at %s", dest)
    local mirror = source == url
        and os.getenv(M.MIRROR_ENV) == nil
        and url:sub(1, #M.GITHUB_RELEASES_URL) == M.GITHUB_RELEASES_URL
        and string.format(", or set %s to a mirror holding it", M.MIRROR_ENV)
      or ""
    fail(string.format("Download failure: %s. Download %s by hand and %s%s.", msg, source, manual, mirror))
  end
  return dest
end

-- The suffix of an archive name, or nil.
function M.archive_suffix(name)
  local lower = name:lower()
  local best
  for _, s in ipairs(M.ARCHIVE_SUFFIXES) do
    if lower:sub(-#s) == s and (best == nil or #s > #best) then best = s end
  end
  return best
end

--- Unpacks archive into the folder parent, as Ultralytics' unzip_file lays it out: an archive holding one
--- top-level folder gives parent/<folder>, any other parent/<archive stem>. Staged and renamed into place
--- (io/unpack.h); every member checked; the unpacked size bounded (M.UNPACK_RATIO). Returns the folder.
function M.unpack(archive, parent, opts)
  opts = opts or {}
  local file = utils.basename(archive)
  local suffix = M.archive_suffix(file)
  local stem = suffix and file:sub(1, #file - #suffix) or file
  local size = (yt.sys.stat(archive) or { size = 0 }).size
  local limits = {
    max_bytes = opts.max_bytes or math.max(M.UNPACK_MIN_BYTES, M.UNPACK_RATIO * size),
    max_entries = opts.max_entries,
  }
  M.log(string.format("Unzipping %s to %s...", archive, parent))
  local ok, dir, stats = pcall(yt.io.unpack, archive, parent, stem, limits)
  if not ok then fail(utils.strip_where(dir)) end
  M.log(string.format("Unzipped %d files (%s) to %s", stats.entries, utils.fmt_bytes(stats.bytes), dir))
  return dir
end

--- The local path of weights named file, as Ultralytics' attempt_download_asset: file itself when it exists, else
--- <weights_dir>/<file>, else, for a name of M.ASSET_NAMES, downloaded there from the assets release (or the
--- mirror). Any other missing name is "not found".
function M.attempt_download_asset(file)
  if utils.exists(file) then return file end
  local name = utils.basename(file)
  local bare = name == file
  local weights_dir = settings.get("weights_dir")
  local local_copy = utils.join(weights_dir, name)
  if bare and utils.exists(local_copy) then return local_copy end
  if not (bare and IS_ASSET[name]) then
    local looked = bare and string.format(" (nor in weights_dir %s)", weights_dir) or ""
    error(string.format("model '%s' not found%s", file, looked), 0)
  end
  local url = string.format("%s/%s/%s", M.GITHUB_RELEASES_URL, M.ASSETS_RELEASE, name)
  return M.safe_download(url, local_copy, { min_bytes = M.MIN_WEIGHTS_BYTES })
end

--- Downloads a dataset archive into datasets_dir and unpacks it there, deleting the archive afterwards (as
--- Ultralytics' download(..., delete=True)). expect: the path the dataset must then have (for the messages).
--- ready(): whether the dataset is there; checked again once the lock is held, since another process (a rank of
--- the same run) may have done the download meanwhile, which this one then waits for.
function M.download_dataset(url, datasets_dir, expect, ready)
  local name = M.url_file(url)
  local manual = string.format("unpack it into %s (so that %s exists)", datasets_dir, expect)
  if not M.archive_suffix(name) then
    fail(
      string.format(
        "download: %s is not a zip or tar archive, which is what yolotrain unpacks; download the "
          .. "dataset by hand and put it so that %s exists",
        url,
        expect
      )
    )
  end
  utils.mkdir_p(datasets_dir)
  local archive = utils.join(datasets_dir, name)
  local _lock <close> = yt.sys.lock(lock_path(archive .. ".unpack")) -- luacheck: ignore 211 (held until the end of the scope)
  if ready() then return end
  local t0 = yt.machine.now()
  M.safe_download(url, archive, { manual = manual })
  local ok, err = pcall(M.unpack, archive, datasets_dir)
  os.remove(archive)
  if not ok then fail(string.format("%s (downloaded from %s)", utils.strip_where(err), M.mirror(url))) end
  M.log(string.format("Dataset download success (%.1fs), saved to %s", yt.machine.now() - t0, datasets_dir))
end

return M
