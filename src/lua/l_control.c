/* yt.control: the control socket of a running training (`yolotrain attach`, docs/cli.md "Attach").
 *
 * A Unix domain stream socket in the run directory, mode 0600, that only its owner may use: it runs code in the
 * training, so there is no TCP and no other user. The training polls it between steps without blocking; one
 * client at a time.
 *
 *   local s = yt.control.serve(path)   refuses a path that exists unless it is a stale socket of ours (removed)
 *   ev, text = s:poll([timeout_ms])    0 (default): never blocks; -1: waits. ev: nil (nothing), "connect",
 *                                      "disconnect", "eval" (text = a chunk), "complete" (text = a prefix)
 *   s:send(kind, text)                 kind: "out" | "err" | "done" | "matches" | "bye" (a client that cannot
 *                                      take it is dropped: the training never waits on a client for long)
 *   s:connected(), s:path(), s:close() (removes the socket file when it is still ours; also on collection)
 *   yt.control.peer_pid(path)          the pid serving the socket, or nil, reason
 *   yt.control.attach(path)            the client: a REPL whose entries run in the training (the executable's
 *                                      line editor when one is set); returns 0, or 1 after printing why not
 *
 * Framing, both ways: one byte of kind, a 4-byte big-endian length, the payload. Client -> training: 'E' chunk,
 * 'C' completion prefix. Training -> client: 'H' hello, 'B' busy (then closed), 'O' output, 'R' error output,
 * 'D' the chunk is done, 'L' completion matches (newline-separated), 'X' the training ends. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lua/yt_lua.h"
#include "lua/yt_repl.h"

#define SERVER_MT "yt.ControlServer"
#define MAX_MESSAGE (16u << 20) /* a chunk or a reply larger than this is refused */
#define SEND_TIMEOUT_MS 5000    /* a client that takes nothing for this long is dropped */

typedef struct control_server {
    int listen_fd, client_fd;
    char *path;
    dev_t dev;
    ino_t ino;
    char *in;   /* bytes received from the client not yet parsed */
    size_t in_len, in_cap;
} control_server;

/* ---- addresses --------------------------------------------------------------------------------------------- */

/* Fills addr for path. A path longer than sun_path goes through /proc/self/fd/<dir fd>/<name>: *dir_fd is then
 * an open descriptor the caller closes after bind/connect. Returns 0, or -1 with msg set. */
static int make_address(const char *path, struct sockaddr_un *addr, int *dir_fd, char *msg, size_t msglen)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    *dir_fd = -1;
    if (strlen(path) < sizeof addr->sun_path) {
        memcpy(addr->sun_path, path, strlen(path) + 1);
        return 0;
    }
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(msg, msglen, "%s: the socket name is too long", path);
        return -1;
    }
    char *dir = strndup(path, (size_t)(slash - path) + (slash == path));
    if (!dir) {
        snprintf(msg, msglen, "%s: out of memory", path);
        return -1;
    }
    *dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (*dir_fd < 0) {
        snprintf(msg, msglen, "%s: cannot open its directory: %s", path, strerror(errno));
        return -1;
    }
    int n = snprintf(addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d/%s", *dir_fd, slash + 1);
    if (n < 0 || (size_t)n >= sizeof addr->sun_path) {
        close(*dir_fd);
        *dir_fd = -1;
        snprintf(msg, msglen, "%s: the socket name is too long", path);
        return -1;
    }
    return 0;
}

/* Connects to the socket at path. Returns the fd, or -1 with errno set (msg set when the address is the problem). */
static int connect_to(const char *path, char *msg, size_t msglen)
{
    struct sockaddr_un addr;
    int dir_fd;
    msg[0] = '\0';
    if (make_address(path, &addr, &dir_fd, msg, msglen) != 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&addr, sizeof addr);
    int e = errno;
    if (dir_fd >= 0) close(dir_fd);
    if (r != 0) {
        if (fd >= 0) close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* ---- framing ----------------------------------------------------------------------------------------------- */

/* Writes all of buf to a (possibly non-blocking) socket, waiting at most SEND_TIMEOUT_MS per stall. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int r = poll(&p, 1, SEND_TIMEOUT_MS);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

static int send_message(int fd, char kind, const char *payload, size_t len)
{
    if (len > MAX_MESSAGE) len = MAX_MESSAGE;
    unsigned char head[5] = {(unsigned char)kind, (unsigned char)(len >> 24), (unsigned char)(len >> 16),
                             (unsigned char)(len >> 8), (unsigned char)len};
    if (write_all(fd, (const char *)head, sizeof head) != 0) return -1;
    return write_all(fd, payload, len);
}

/* Blocking read of exactly len bytes. Returns 0, or -1 at end of stream or on an error. */
static int read_exact(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Blocking read of one message (client side). Returns the malloc'ed payload (NUL-terminated) with *kind and *len
 * set, or NULL when the connection ended. */
static char *read_message(int fd, char *kind, size_t *len)
{
    unsigned char head[5];
    if (read_exact(fd, (char *)head, sizeof head) != 0) return NULL;
    size_t n = ((size_t)head[1] << 24) | ((size_t)head[2] << 16) | ((size_t)head[3] << 8) | head[4];
    if (n > MAX_MESSAGE) return NULL;
    char *buf = malloc(n + 1);
    if (!buf) return NULL;
    if (read_exact(fd, buf, n) != 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *kind = (char)head[0];
    *len = n;
    return buf;
}

/* ---- the server -------------------------------------------------------------------------------------------- */

static control_server *check_server(lua_State *L)
{
    control_server *s = luaL_checkudata(L, 1, SERVER_MT);
    if (s->listen_fd < 0) luaL_error(L, "the control socket is closed");
    return s;
}

static void drop_client(control_server *s)
{
    if (s->client_fd >= 0) close(s->client_fd);
    s->client_fd = -1;
    s->in_len = 0;
}

/* Removes the socket file only while it is the one this server bound (not a successor's). */
static void server_close(control_server *s)
{
    drop_client(s);
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
        struct stat st;
        if (s->path && lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == s->dev && st.st_ino == s->ino)
            unlink(s->path);
    }
    free(s->path);
    s->path = NULL;
    free(s->in);
    s->in = NULL;
    s->in_cap = 0;
}

static int server_gc(lua_State *L)
{
    server_close(luaL_checkudata(L, 1, SERVER_MT));
    return 0;
}

/* The path exists: remove it when it is a stale socket of ours, refuse otherwise. Returns 0 or raises. */
static void clear_stale(lua_State *L, const char *path, const struct stat *st)
{
    if (!S_ISSOCK(st->st_mode))
        luaL_error(L, "%s exists and is not a socket: refusing to serve the attach socket there", path);
    if (st->st_uid != geteuid())
        luaL_error(L, "%s is a socket of another user (uid %d): refusing to serve the attach socket there", path,
                   (int)st->st_uid);
    char msg[256];
    int fd = connect_to(path, msg, sizeof msg);
    if (fd >= 0) {
        close(fd);
        luaL_error(L, "%s is in use: another training serves it", path);
    }
    if (errno != ECONNREFUSED && errno != ENOENT)
        luaL_error(L, "%s: cannot tell whether it is stale: %s", path, msg[0] ? msg : strerror(errno));
    if (unlink(path) != 0 && errno != ENOENT) luaL_error(L, "%s: cannot remove the stale socket: %s", path,
                                                         strerror(errno));
}

static int l_serve(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (lstat(path, &st) == 0) clear_stale(L, path, &st);
    else if (errno != ENOENT) return luaL_error(L, "%s: %s", path, strerror(errno));

    control_server *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    s->listen_fd = s->client_fd = -1;
    luaL_setmetatable(L, SERVER_MT);
    s->path = strdup(path);
    if (!s->path) return luaL_error(L, "out of memory");

    struct sockaddr_un addr;
    int dir_fd;
    char msg[256];
    if (make_address(path, &addr, &dir_fd, msg, sizeof msg) != 0) return luaL_error(L, "%s", msg);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (dir_fd >= 0) close(dir_fd);
        return luaL_error(L, "%s: socket: %s", path, strerror(errno));
    }
    /* created 0600 (the umask is process-wide, but only for this call), and chmod'ed again in case it was not */
    mode_t old_mask = umask(0177);
    int r = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    int e = errno;
    umask(old_mask);
    if (dir_fd >= 0) close(dir_fd);
    if (r != 0) {
        close(fd);
        return luaL_error(L, "%s: bind: %s", path, strerror(e));
    }
    if (chmod(path, 0600) != 0 || lstat(path, &st) != 0 || listen(fd, 4) != 0) {
        e = errno;
        close(fd);
        unlink(path);
        return luaL_error(L, "%s: %s", path, strerror(e));
    }
    s->listen_fd = fd;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    return 1;
}

/* Takes a waiting connection. A second client is told why and closed; so is another user's (root can connect to
 * a 0600 socket). Returns 1 when a client was taken, 0 otherwise. */
static int accept_one(control_server *s)
{
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return 0;
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || cred.uid != geteuid()) {
        static const char no[] = "this training belongs to another user";
        send_message(fd, 'B', no, sizeof no - 1);
        close(fd);
        return 0;
    }
    if (s->client_fd >= 0) {
        static const char busy[] =
            "another client is attached to this training; only one at a time (leave it with Ctrl-D there)";
        send_message(fd, 'B', busy, sizeof busy - 1);
        close(fd);
        return 0;
    }
    s->client_fd = fd;
    s->in_len = 0;
    return 1;
}

/* Pushes the next complete message of the input buffer as (event, text). Returns 2, 0 when there is none, or -1
 * when the client sent something that is not a message (dropped). */
static int take_message(lua_State *L, control_server *s)
{
    if (s->in_len < 5) return 0;
    const unsigned char *h = (const unsigned char *)s->in;
    size_t n = ((size_t)h[1] << 24) | ((size_t)h[2] << 16) | ((size_t)h[3] << 8) | h[4];
    if (n > MAX_MESSAGE || (h[0] != 'E' && h[0] != 'C')) return -1;
    if (s->in_len < 5 + n) return 0;
    lua_pushstring(L, h[0] == 'E' ? "eval" : "complete");
    lua_pushlstring(L, s->in + 5, n);
    memmove(s->in, s->in + 5 + n, s->in_len - 5 - n);
    s->in_len -= 5 + n;
    return 2;
}

/* Reads what the client sent. Returns 1 while it is connected, 0 when it went away. */
static int read_client(control_server *s)
{
    for (;;) {
        if (s->in_cap - s->in_len < 4096) {
            size_t cap = s->in_cap ? s->in_cap * 2 : 8192;
            if (cap > MAX_MESSAGE + 8192) return 0;
            char *p = realloc(s->in, cap);
            if (!p) return 0;
            s->in = p;
            s->in_cap = cap;
        }
        ssize_t n = recv(s->client_fd, s->in + s->in_len, s->in_cap - s->in_len, MSG_DONTWAIT);
        if (n > 0) {
            s->in_len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 1;
        return 0; /* end of stream or a reset */
    }
}

static int m_poll(lua_State *L)
{
    control_server *s = check_server(L);
    int timeout = (int)luaL_optinteger(L, 2, 0);
    for (;;) {
        if (s->client_fd != -1) {
            int got = take_message(L, s);
            if (got > 0) return got;
            if (got < 0 || s->client_fd == -2) {
                drop_client(s);
                lua_pushliteral(L, "disconnect");
                return 1;
            }
        }
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN}, {.fd = s->client_fd, .events = POLLIN}};
        int r = poll(p, s->client_fd >= 0 ? 2 : 1, timeout);
        if (r < 0 && errno == EINTR) return 0; /* a signal (Ctrl-C while paused): the caller looks */
        if (r <= 0) return 0;
        if (p[0].revents & POLLIN) {
            if (accept_one(s)) {
                lua_pushliteral(L, "connect");
                return 1;
            }
        }
        if (s->client_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            if (!read_client(s)) {
                int got = take_message(L, s); /* a chunk sent just before Ctrl-D still runs */
                if (got > 0) {
                    close(s->client_fd);
                    s->client_fd = -2; /* gone, but messages remain: report the disconnect after them */
                    return got;
                }
                drop_client(s);
                lua_pushliteral(L, "disconnect");
                return 1;
            }
            continue;
        }
        if (timeout >= 0) return 0;
    }
}

static int m_send(lua_State *L)
{
    control_server *s = check_server(L);
    const char *kind = luaL_checkstring(L, 2);
    size_t len;
    const char *text = luaL_optlstring(L, 3, "", &len);
    char k;
    if (strcmp(kind, "out") == 0) k = 'O';
    else if (strcmp(kind, "err") == 0) k = 'R';
    else if (strcmp(kind, "done") == 0) k = 'D';
    else if (strcmp(kind, "matches") == 0) k = 'L';
    else if (strcmp(kind, "bye") == 0) k = 'X';
    else if (strcmp(kind, "hello") == 0) k = 'H';
    else return luaL_argerror(L, 2, "one of out, err, done, matches, bye, hello");
    if (s->client_fd < 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    int ok = send_message(s->client_fd, k, text, len) == 0;
    if (!ok) drop_client(s);
    lua_pushboolean(L, ok);
    return 1;
}

static int m_connected(lua_State *L)
{
    control_server *s = check_server(L);
    lua_pushboolean(L, s->client_fd >= 0);
    return 1;
}

static int m_path(lua_State *L)
{
    control_server *s = check_server(L);
    lua_pushstring(L, s->path);
    return 1;
}

static int m_close(lua_State *L)
{
    server_close(luaL_checkudata(L, 1, SERVER_MT));
    return 0;
}

/* ---- the client -------------------------------------------------------------------------------------------- */

typedef struct attach_client {
    int fd;
    int ended; /* the training said goodbye or the connection broke */
} attach_client;

/* Prints the replies to one request until 'D' (or 'L', whose payload goes to *matches). Returns 0, or -1 when the
 * session ended. */
static int print_replies(attach_client *c, char **matches)
{
    for (;;) {
        char kind;
        size_t len;
        char *msg = read_message(c->fd, &kind, &len);
        if (!msg) {
            fflush(stdout);
            fputs("the training closed the connection\n", stderr);
            c->ended = 1;
            return -1;
        }
        switch (kind) {
        case 'O': fwrite(msg, 1, len, stdout); fflush(stdout); break;
        case 'R': fflush(stdout); fwrite(msg, 1, len, stderr); fflush(stderr); break;
        case 'X':
            fflush(stdout);
            fprintf(stderr, "%s\n", len ? msg : "the training ended");
            c->ended = 1;
            free(msg);
            return -1;
        case 'L':
            if (matches) {
                *matches = msg;
                return 0;
            }
            break;
        case 'D': free(msg); return 0;
        default: break;
        }
        free(msg);
    }
}

static int client_eval(void *ud, const char *src, size_t len)
{
    attach_client *c = ud;
    if (c->ended) return 1;
    if (send_message(c->fd, 'E', src, len) != 0) {
        fputs("the training closed the connection\n", stderr);
        return 1;
    }
    return print_replies(c, NULL) != 0;
}

static char **client_complete(void *ud, const char *text)
{
    attach_client *c = ud;
    if (c->ended || send_message(c->fd, 'C', text, strlen(text)) != 0) return NULL;
    char *list = NULL;
    if (print_replies(c, &list) != 0 || !list) return NULL;
    size_t n = 1;
    for (const char *p = list; *p; p++) n += *p == '\n';
    char **out = calloc(n + 1, sizeof *out);
    size_t k = 0;
    for (char *save = NULL, *w = out ? strtok_r(list, "\n", &save) : NULL; w; w = strtok_r(NULL, "\n", &save))
        out[k++] = strdup(w);
    free(list);
    return out;
}

/* The pid of the process serving the socket at path, or nil with the reason (nothing serves it, not a socket). The
 * connection this makes is refused by a busy server like any second client, harmlessly. */
static int l_peer_pid(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char msg[256];
    int fd = connect_to(path, msg, sizeof msg);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushstring(L, msg[0] ? msg : strerror(errno));
        return 2;
    }
    struct ucred cred;
    socklen_t clen = sizeof cred;
    int ok = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0;
    close(fd);
    if (!ok) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushinteger(L, cred.pid);
    return 1;
}

static int l_attach(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (lstat(path, &st) != 0) {
        fprintf(stderr, "yolotrain attach: %s: %s\n", path, strerror(errno));
        lua_pushinteger(L, 1);
        return 1;
    }
    if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        fprintf(stderr, "yolotrain attach: %s is not an attach socket of yours (owner uid %d, mode %03o): refusing it\n",
                path, (int)st.st_uid, (unsigned)(st.st_mode & 0777));
        lua_pushinteger(L, 1);
        return 1;
    }
    char msg[256];
    int fd = connect_to(path, msg, sizeof msg);
    if (fd < 0) {
        fprintf(stderr, "yolotrain attach: %s: %s\n", path,
                msg[0] ? msg : errno == ECONNREFUSED ? "no training serves it (a stale socket)" : strerror(errno));
        lua_pushinteger(L, 1);
        return 1;
    }
    attach_client c = {.fd = fd};
    char kind;
    size_t len;
    char *hello = read_message(fd, &kind, &len);
    if (!hello || kind != 'H') {
        fprintf(stderr, "yolotrain attach: %s\n", hello ? hello : "the training closed the connection");
        free(hello);
        close(fd);
        lua_pushinteger(L, 1);
        return 1;
    }
    yt_repl_set_completer(client_complete, &c);
    yt_repl_set_watch_fd(fd);
    yt_repl_run_remote(L, isatty(STDIN_FILENO) ? hello : NULL, client_eval, &c);
    yt_repl_set_watch_fd(-1);
    yt_repl_set_completer(NULL, NULL);
    /* the input ended because the training spoke: say what it said (its goodbye) */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (!c.ended && poll(&p, 1, 0) > 0) print_replies(&c, NULL);
    free(hello);
    close(fd);
    lua_pushinteger(L, 0);
    return 1;
}

static const luaL_Reg server_methods[] = {
    {"poll", m_poll}, {"send", m_send}, {"connected", m_connected}, {"path", m_path}, {"close", m_close},
    {NULL, NULL},
};

static const luaL_Reg control_functions[] = {
    {"serve", l_serve},
    {"attach", l_attach},
    {"peer_pid", l_peer_pid},
    {NULL, NULL},
};

void yt_lua_open_control(lua_State *L, int module_index)
{
    luaL_newmetatable(L, SERVER_MT);
    luaL_newlib(L, server_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, server_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, server_gc);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newlib(L, control_functions);
    lua_setfield(L, module_index, "control");
}
