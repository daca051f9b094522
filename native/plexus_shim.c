// plexus-shim: what the runtime executes in daemon mode (config "type": "plexus-shim"). A Node
// executable costs 30-40 ms to start, most of a pod's whole CNI floor; this costs ~1 ms. It
// forwards the call to `plexus daemon` over <daemonSocketDir>/plexus.sock (framing in
// src/daemon/protocol.ts) and prints its answer. When the daemon cannot be reached it executes
// `plexus` beside itself with the same environment and stdin, so a stopped daemon never blocks
// attaching or tearing down a pod. Once the request is sent it never redoes the call (a lost
// answer is reported as CNI error 11 so the runtime retries), except DEL: DEL is idempotent, so
// when the daemon dies or closes without answering, the shim runs the DEL itself, one-shot.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const FORWARDED[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME",
                                        "CNI_ARGS", "CNI_PATH", "CNI_NETNS_OVERRIDE", NULL};

struct buf {
  char *data;
  size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (b->len + n + 1 > cap) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) abort();
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static int read_all(int fd, struct buf *b) {
  char chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    put(b, chunk, (size_t)n);
  }
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

// The value of "daemonSocketDir" in the config, when it is a plain JSON string (no escapes).
static int socket_dir(const char *conf, char *out, size_t outlen) {
  const char *k = strstr(conf, "\"daemonSocketDir\"");
  if (!k) return -1;
  const char *p = k + strlen("\"daemonSocketDir\"");
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p++ != ':') return -1;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p++ != '"') return -1;
  size_t n = 0;
  while (p[n] && p[n] != '"') {
    if (p[n] == '\\') return -1;
    n++;
  }
  if (p[n] != '"' || n == 0 || n + 1 > outlen) return -1;
  memcpy(out, p, n);
  out[n] = '\0';
  return 0;
}

static const struct buf *saved_in;

// Runs `plexus` beside this executable with our environment and the stdin we already consumed.
static void run_plexus(const struct buf *in) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) {
    perror("plexus-shim: /proc/self/exe");
    exit(1);
  }
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  char target[PATH_MAX];
  snprintf(target, sizeof target, "%.*s/plexus", slash ? (int)(slash - self) : 1, slash ? self : ".");
  int fds[2];
  if (pipe(fds) != 0) {
    perror("plexus-shim: pipe");
    exit(1);
  }
  pid_t feeder = fork();
  if (feeder == 0) {
    close(fds[0]);
    write_all(fds[1], in->data ? in->data : "", in->len);
    _exit(0);
  }
  close(fds[1]);
  dup2(fds[0], 0);
  close(fds[0]);
  char *argv[] = {target, NULL};
  execv(target, argv);
  fprintf(stderr, "plexus-shim: exec %s: %s\n", target, strerror(errno));
  exit(1);
}

static void retry_later(const char *sock, const char *what) {
  const char *cmd = getenv("CNI_COMMAND");
  if (cmd && strcmp(cmd, "DEL") == 0 && saved_in) {
    fprintf(stderr, "plexus-shim: daemon at %s %s; running the DEL itself\n", sock, what);
    // The exec'd plexus must not forward to a daemon again (a restarted one would be fine, a
    // dying one would answer nothing twice): it runs the DEL in its own process.
    setenv("PLEXUS_NO_DAEMON", "1", 1);
    run_plexus(saved_in);
  }
  printf("{\"cniVersion\":\"1.1.0\",\"code\":11,\"msg\":\"plexus daemon at %s %s; retry\"}\n", sock, what);
  exit(1);
}

int main(void) {
  struct buf in = {0};
  if (read_all(0, &in) != 0) in.len = 0;
  saved_in = &in;
  // A daemon that dies while we write must be an EPIPE we handle, not a signal that kills us.
  signal(SIGPIPE, SIG_IGN);
  const char *cmd = getenv("CNI_COMMAND");
  char dir[PATH_MAX];
  // VERSION needs no daemon, and a config that names none is served by plexus itself.
  if (!cmd || strcmp(cmd, "VERSION") == 0 || !in.data || socket_dir(in.data, dir, sizeof dir - 16) != 0) run_plexus(&in);

  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  int len = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/plexus.sock", dir);
  if (len < 0 || (size_t)len >= sizeof addr.sun_path) run_plexus(&in);
  struct buf req = {0};
  put(&req, "PLEXUS1\n", 8);
  for (const char *const *k = FORWARDED; *k; k++) {
    const char *v = getenv(*k);
    if (!v) continue;
    if (strchr(v, '\n')) run_plexus(&in);
    put(&req, *k, strlen(*k));
    put(&req, "=", 1);
    put(&req, v, strlen(v));
    put(&req, "\n", 1);
  }
  put(&req, "\n", 1);
  if (in.len) put(&req, in.data, in.len);

  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
    if (s >= 0) close(s);
    run_plexus(&in);
  }
  if (write_all(s, req.data, req.len) != 0 || shutdown(s, SHUT_WR) != 0) retry_later(addr.sun_path, "failed mid-call");
  struct buf reply = {0};
  if (read_all(s, &reply) != 0 || !reply.data) retry_later(addr.sun_path, "closed without an answer");
  char *nl = strchr(reply.data, '\n');
  if (!nl || nl == reply.data) retry_later(addr.sun_path, "sent a malformed answer");
  *nl = '\0';
  char *end;
  long status = strtol(reply.data, &end, 10);
  if (*end != '\0') retry_later(addr.sun_path, "sent a malformed answer");
  size_t body = reply.len - (size_t)(nl + 1 - reply.data);
  if (write_all(1, nl + 1, body) != 0) return 1;
  return (int)status;
}
