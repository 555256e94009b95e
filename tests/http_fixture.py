#!/usr/bin/env python3
"""A local HTTP server and archive maker for tests/lua/downloads_spec.lua (never the internet).

  python3 tests/http_fixture.py serve ROOT PORTFILE
      Serves on 127.0.0.1 (a free port, written to PORTFILE once listening) until killed, at most MAX_LIFETIME
      seconds. Routes, NAME being a file in ROOT:
        /files/NAME             the file, with Content-Length
        /redirect/NAME          302 to /files/NAME (a release asset redirects to its storage host the same way)
        /truncate/NAME          Content-Length of the whole file, then half of it, then the connection closes
        /stall/NAME             Content-Length of the whole file, 16 bytes, then nothing until the client gives up
        /status/CODE            that HTTP status with a short HTML body (404, 500 ...)
      Each request is logged to ROOT/requests.log as "<path>" per line.

  python3 tests/http_fixture.py zip OUT.zip SRC_DIR [PREFIX]      SRC_DIR's files as PREFIX/<relative path>
  python3 tests/http_fixture.py targz OUT.tar.gz SRC_DIR [PREFIX]
  python3 tests/http_fixture.py evil OUT KIND                      KIND: dotdot | absolute | bomb
"""
import http.server
import os
import socketserver
import sys
import tarfile
import threading
import time
import zipfile

MAX_LIFETIME = 900


class Handler(http.server.BaseHTTPRequestHandler):
    root = "."

    def log_message(self, fmt, *args):
        with open(os.path.join(self.root, "requests.log"), "a") as f:
            f.write(self.path + "\n")

    def send_file_head(self, data):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()

    def read(self, name):
        path = os.path.join(self.root, os.path.basename(name))
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            return f.read()

    def do_GET(self):
        parts = self.path.split("/", 2)
        route, arg = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        if route == "status":
            body = b"<html>status</html>"
            self.send_response(int(arg))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if route == "redirect":
            self.send_response(302)
            self.send_header("Location", "/files/" + arg)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = self.read(arg)
        if data is None:
            self.send_error(404)
            return
        self.send_file_head(data)
        if route == "files":
            self.wfile.write(data)
        elif route == "truncate":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif route == "stall":
            self.wfile.write(data[:16])
            self.wfile.flush()
            time.sleep(30)
        else:
            self.wfile.write(data)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(root, portfile):
    Handler.root = root
    server = Server(("127.0.0.1", 0), Handler)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, portfile)
    threading.Timer(MAX_LIFETIME, server.shutdown).start()  # never outlives a stuck test run
    server.serve_forever()


def members(src, prefix):
    for d, _, files in sorted(os.walk(src)):
        for name in sorted(files):
            full = os.path.join(d, name)
            rel = os.path.relpath(full, src)
            yield full, os.path.join(prefix, rel) if prefix else rel


def make_zip(out, src, prefix=""):
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for full, arc in members(src, prefix):
            z.write(full, arc)


def make_targz(out, src, prefix=""):
    with tarfile.open(out, "w:gz") as t:
        for full, arc in members(src, prefix):
            t.add(full, arc)


def make_evil(out, kind):
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("ds/images/train/ok.txt", "ok")
        if kind == "dotdot":
            z.writestr("ds/../../evil.txt", "escaped")
        elif kind == "absolute":
            z.writestr("/tmp/yt_download_spec_evil.txt", "escaped")
        elif kind == "bomb":  # 200 MB of zeros, about 200 KB packed: past the 64 MiB floor of the bound
            with z.open("ds/images/train/zeros.bin", "w") as f:
                block = b"\0" * (1 << 20)
                for _ in range(200):
                    f.write(block)
        else:
            raise SystemExit("unknown kind " + kind)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "serve" and len(argv) == 4:
        serve(argv[2], argv[3])
    elif cmd == "zip" and len(argv) in (4, 5):
        make_zip(argv[2], argv[3], argv[4] if len(argv) == 5 else "")
    elif cmd == "targz" and len(argv) in (4, 5):
        make_targz(argv[2], argv[3], argv[4] if len(argv) == 5 else "")
    elif cmd == "evil" and len(argv) == 4:
        make_evil(argv[2], argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
