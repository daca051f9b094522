// plexus_netns: the few system calls Node cannot make, kept small enough to audit in one sitting.
//
// setns(2) moves only the calling thread, and Node runs timers, I/O callbacks and child spawns on
// that same thread. So every entry into another network namespace here is one synchronous window
// in C: enter, do the one thing that must happen inside (create a socket, touch /proc/sys), leave.
// Sockets keep the namespace they were created in, so everything after socket() runs outside.
// If leaving fails the thread is stranded in a foreign namespace and the process must not go on:
// abort().
//
// Errors are thrown as JS Errors carrying .errno (positive, as the kernel reports it), .code
// ('ENOENT', ...) and .syscall, with a message that names the path involved (plexus_napi.h).
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

// A kernel that never answers would hang a CNI call forever; the runtime has its own deadline,
// but an error that says "netlink did not answer" is easier to act on than a killed plugin.
#define RECV_TIMEOUT_SEC 60
#define RCVBUF_BYTES (1 << 20)
#define MAX_KEY 512
#define MAX_SYSCTL_VALUE 4096

#include "plexus_napi.h"
#include "plexus_netlink.h"

// ---- the namespace window ---------------------------------------------------------------------

typedef struct {
  int self_fd;
  int entered;
} ns_window;

// Enters the network namespace at path; on failure throws and returns 0 with the thread unmoved.
static int ns_enter(napi_env env, ns_window *w, const char *path, int present) {
  w->self_fd = -1;
  w->entered = 0;
  if (!present) return 1;
  w->self_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (w->self_fd < 0) {
    throw_errno(env, errno, "open", "/proc/thread-self/ns/net");
    return 0;
  }
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int err = errno;
    close(w->self_fd);
    throw_errno(env, err, "open", path);
    return 0;
  }
  // CLONE_NEWNET makes the kernel reject a file that is not a network namespace (EINVAL).
  if (setns(target, CLONE_NEWNET) != 0) {
    int err = errno;
    close(target);
    close(w->self_fd);
    throw_errno(env, err, "setns", path);
    return 0;
  }
  close(target);
  w->entered = 1;
  return 1;
}

static void ns_leave(ns_window *w) {
  if (w->entered && setns(w->self_fd, CLONE_NEWNET) != 0) {
    fprintf(stderr, "plexus_netns: cannot return to the original network namespace: %s\n", strerror(errno));
    abort();
  }
  if (w->self_fd >= 0) close(w->self_fd);
  w->entered = 0;
  w->self_fd = -1;
}

// ---- openNetlinkIn(nsPath | null, protocol, groups) -> fd ---------------------------------------------

static napi_value open_netlink_in(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_MAX];
  int present = 0;
  int32_t protocol, groups;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_optional_path(env, argv[0], path, sizeof path, &present)) return NULL;
  if (!get_int(env, argv[1], &protocol, "protocol must be a number")) return NULL;
  if (!get_int(env, argv[2], &groups, "groups must be a number")) return NULL;

  ns_window w;
  if (!ns_enter(env, &w, path, present)) return NULL;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  int err = errno;
  ns_leave(&w);
  if (fd < 0) {
    throw_errno(env, err, "socket", present ? path : "(current namespace)");
    return NULL;
  }

  int one = 1;
  // Both are best effort: kernels before 4.12 lack EXT_ACK and still work, just less verbosely.
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  int rcvbuf = RCVBUF_BYTES;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct timeval tv = {.tv_sec = RECV_TIMEOUT_SEC, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // Subscribing in the same call as socket() means no notification sent after it is missed.
  if (groups != 0) {
    struct sockaddr_nl local = {.nl_family = AF_NETLINK, .nl_groups = (uint32_t)groups};
    if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
      int bind_err = errno;
      close(fd);
      throw_errno(env, bind_err, "bind", "netlink multicast groups");
      return NULL;
    }
  }

  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

// ---- close(fd) --------------------------------------------------------------------------------

static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (!get_int(env, argv[0], &fd, "fd must be a number")) return NULL;
  if (close(fd) != 0 && errno != EINTR) throw_errno(env, errno, "close", "netlink socket");
  return NULL;
}

// ---- sysctls: /proc/sys/net resolves against the calling thread's namespace at open() ----------

// Keys are paths below /proc/sys ("net/ipv4/conf/eth0/rp_filter"); refuse anything that could
// escape it.
static int sysctl_path(napi_env env, napi_value v, char *out, size_t cap) {
  char key[MAX_KEY];
  if (!get_string(env, v, key, sizeof key, "sysctl key must be a short string")) return 0;
  if (key[0] == '\0' || key[0] == '/' || strstr(key, "..") != NULL) {
    throw_type(env, "sysctl key must be a relative path below /proc/sys without '..'");
    return 0;
  }
  snprintf(out, cap, "/proc/sys/%s", key);
  return 1;
}

static napi_value write_sysctl_in(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_MAX], file[MAX_KEY + 16], value[MAX_SYSCTL_VALUE];
  int present = 0;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_optional_path(env, argv[0], path, sizeof path, &present)) return NULL;
  if (!sysctl_path(env, argv[1], file, sizeof file)) return NULL;
  if (!get_string(env, argv[2], value, sizeof value, "sysctl value must be a short string")) return NULL;

  ns_window w;
  if (!ns_enter(env, &w, path, present)) return NULL;
  int err = 0;
  const char *syscall = "open";
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    err = errno;
  } else {
    size_t vlen = strlen(value);
    ssize_t n;
    do {
      n = write(fd, value, vlen);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      err = errno;
      syscall = "write";
    } else if ((size_t)n != vlen) {
      err = EIO;
      syscall = "write";
    }
    close(fd);
  }
  ns_leave(&w);
  if (err) throw_errno(env, err, syscall, file);
  return NULL;
}

static napi_value read_sysctl_in(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[PATH_MAX], file[MAX_KEY + 16], value[MAX_SYSCTL_VALUE];
  int present = 0;
  if (!get_args(env, info, 2, argv)) return NULL;
  if (!get_optional_path(env, argv[0], path, sizeof path, &present)) return NULL;
  if (!sysctl_path(env, argv[1], file, sizeof file)) return NULL;

  ns_window w;
  if (!ns_enter(env, &w, path, present)) return NULL;
  int err = 0;
  const char *syscall = "open";
  ssize_t total = 0;
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = errno;
  } else {
    for (;;) {
      ssize_t n = read(fd, value + total, sizeof value - 1 - (size_t)total);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err = errno;
        syscall = "read";
        break;
      }
      if (n == 0 || (size_t)(total += n) >= sizeof value - 1) break;
    }
    close(fd);
  }
  ns_leave(&w);
  if (err) {
    throw_errno(env, err, syscall, file);
    return NULL;
  }
  napi_value result;
  napi_create_string_utf8(env, value, (size_t)total, &result);
  return result;
}

// ---- openRawIn(nsPath | null) -> fd;  sendRaw(fd, ifindex, frame) -> bytes sent -------------

// The caller closes the fd, preferably off its event loop: close(2) on a packet socket waits for
// an RCU grace period (synchronize_net in packet_release), ~9 ms measured here.
static napi_value open_raw_in(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[PATH_MAX];
  int present = 0;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (!get_optional_path(env, argv[0], path, sizeof path, &present)) return NULL;
  ns_window w;
  if (!ns_enter(env, &w, path, present)) return NULL;
  // Protocol 0: this socket only sends, so it never queues received frames.
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  int err = errno;
  ns_leave(&w);
  if (fd < 0) {
    throw_errno(env, err, "socket", "AF_PACKET");
    return NULL;
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

// frame is a whole Ethernet frame; its destination MAC and EtherType address the send.
static napi_value send_raw(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd, ifindex;
  void *frame;
  size_t len;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_int(env, argv[0], &fd, "fd must be a number")) return NULL;
  if (!get_int(env, argv[1], &ifindex, "ifindex must be a number")) return NULL;
  if (!get_buffer(env, argv[2], &frame, &len, "frame must be a Buffer")) return NULL;
  if (len < 14 || ifindex <= 0) {
    throw_type(env, "frame must hold an Ethernet header and ifindex must be positive");
    return NULL;
  }
  const unsigned char *bytes = frame;
  struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};
  memcpy(&to.sll_protocol, bytes + 12, 2);
  memcpy(to.sll_addr, bytes, 6);
  ssize_t n;
  do {
    n = sendto(fd, frame, len, 0, (struct sockaddr *)&to, sizeof to);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    throw_errno(env, errno, "sendto", "AF_PACKET");
    return NULL;
  }
  napi_value result;
  napi_create_int32(env, (int32_t)n, &result);
  return result;
}

// ---- nsIdentity(path) -> {dev, ino} -----------------------------------------------------------

static napi_value ns_identity(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[PATH_MAX];
  if (!get_args(env, info, 1, argv)) return NULL;
  if (!get_string(env, argv[0], path, sizeof path, "path must be a string")) return NULL;
  struct stat st;
  if (stat(path, &st) != 0) {
    throw_errno(env, errno, "stat", path);
    return NULL;
  }
  napi_value result, dev, ino;
  napi_create_object(env, &result);
  // Both fit a double exactly: nsfs inode numbers are 32-bit, device numbers far smaller.
  napi_create_double(env, (double)st.st_dev, &dev);
  napi_create_double(env, (double)st.st_ino, &ino);
  napi_set_named_property(env, result, "dev", dev);
  napi_set_named_property(env, result, "ino", ino);
  return result;
}

// ---- flock(2): host-local's store lock --------------------------------------------------------

// The reference host-local serialises every change to its store with flock(LOCK_EX) on
// <dataDir>/<network>/lock; only the same lock excludes it, and Node has no flock. Non-blocking,
// so a busy lock never parks the event loop (the daemon serves other calls meanwhile): the caller
// retries. Returns true when taken, false when another holder has it.
static napi_value flock_try(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (!get_int(env, argv[0], &fd, "fd must be a number")) return NULL;
  int rc;
  do rc = flock(fd, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EWOULDBLOCK) {
    throw_errno(env, errno, "flock", "lock file");
    return NULL;
  }
  napi_value out;
  napi_get_boolean(env, rc == 0, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"openNetlinkIn", NULL, open_netlink_in, NULL, NULL, NULL, napi_enumerable, NULL},
      {"request", NULL, request, NULL, NULL, NULL, napi_enumerable, NULL},
      {"requestAsync", NULL, request_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"receiveAsync", NULL, receive_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeSysctlIn", NULL, write_sysctl_in, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readSysctlIn", NULL, read_sysctl_in, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openRawIn", NULL, open_raw_in, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendRaw", NULL, send_raw, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nsIdentity", NULL, ns_identity, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flockTry", NULL, flock_try, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
