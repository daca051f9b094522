// Netlink exchanges for plexus_netns.c: one blocking core (no N-API, so any thread can run it)
// behind the synchronous request() and the threadpool variants requestAsync() and receiveAsync().
//
// The threadpool variants exist because the kernel answers some requests long after their effect
// is visible: RTM_DELLINK unlists the links and announces it within a few milliseconds, then waits
// out an RCU barrier and the devices' last references (~20 ms here) before it ACKs. Waiting for
// that on the event loop would stall every other CNI call a daemon is serving.
// Included once, by plexus_netns.c (one translation unit, so the build stays one gcc command).
#ifndef PLEXUS_NETLINK_H
#define PLEXUS_NETLINK_H

#include <node_api.h>

#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "plexus_napi.h"

#define ANSWER_CHUNK 32768

// What the kernel sent: whole netlink messages back to back (each at an NLMSG_ALIGNed offset), or
// the errno of the system call that failed.
typedef struct {
  char *buf;
  size_t len;
  size_t cap;
  int err;
  const char *syscall;
  const char *what;
} nl_answer;

static void answer_fail(nl_answer *a, int err, const char *syscall, const char *what) {
  a->err = err;
  a->syscall = syscall;
  a->what = what;
}

static int answer_reserve(nl_answer *a, size_t more) {
  if (a->len + more <= a->cap) return 1;
  size_t cap = a->cap ? a->cap : ANSWER_CHUNK;
  while (cap < a->len + more) cap *= 2;
  char *bigger = realloc(a->buf, cap);
  if (!bigger) {
    answer_fail(a, ENOMEM, "malloc", "netlink receive buffer");
    return 0;
  }
  a->buf = bigger;
  a->cap = cap;
  return 1;
}

static void answer_free(nl_answer *a) {
  free(a->buf);
  a->buf = NULL;
  a->len = a->cap = 0;
}

// Receives one datagram into a's spare room; returns its size, 0 when none is queued (MSG_DONTWAIT
// given) or -1 after recording the error. A netlink datagram read short is lost for good, so its
// true size is peeked first.
static ssize_t answer_recv(nl_answer *a, int fd, int flags) {
  ssize_t n;
  do {
    n = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | flags);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if ((flags & MSG_DONTWAIT) && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    answer_fail(a, (errno == EAGAIN || errno == EWOULDBLOCK) ? ETIMEDOUT : errno, "recv", "netlink");
    return -1;
  }
  if (!answer_reserve(a, (size_t)n + NLMSG_ALIGNTO)) return -1;
  char *into = a->buf + a->len;
  do {
    n = recv(fd, into, a->cap - a->len, flags);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    answer_fail(a, errno, "recv", "netlink");
    return -1;
  }
  return n;
}

// Keeps the messages of the datagram just received at a->buf + a->len that answer seq (all of them
// when keep_all), packing them at a->len. Returns 1 once ERROR or DONE for seq was seen.
static int answer_keep(nl_answer *a, ssize_t got, uint32_t seq, int keep_all) {
  char *start = a->buf + a->len;
  size_t off = 0, kept = 0;
  int done = 0;
  while (off + NLMSG_HDRLEN <= (size_t)got) {
    struct nlmsghdr h;
    memcpy(&h, start + off, sizeof h);
    if (h.nlmsg_len < NLMSG_HDRLEN || off + h.nlmsg_len > (size_t)got) break;
    size_t size = NLMSG_ALIGN(h.nlmsg_len);
    // Leftovers of an earlier request that failed half-way carry an older seq: skip them.
    if (keep_all || h.nlmsg_seq == seq) {
      if (h.nlmsg_type == NLMSG_OVERRUN) {
        answer_fail(a, ENOBUFS, "recv", "netlink overrun");
        return 1;
      }
      if (kept != off) memmove(start + kept, start + off, h.nlmsg_len);
      kept += size;
      if (!keep_all && (h.nlmsg_type == NLMSG_ERROR || h.nlmsg_type == NLMSG_DONE)) done = 1;
    }
    off += size;
  }
  a->len += kept;
  return done;
}

// Sends one request and collects every message answering it, up to its ERROR (the ACK) or DONE.
static void nl_exchange(int fd, const void *message, size_t len, nl_answer *a) {
  const struct nlmsghdr *req = message;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t sent;
  do {
    sent = sendto(fd, message, len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    answer_fail(a, errno, "sendto", "netlink");
    return;
  }
  for (;;) {
    ssize_t got = answer_recv(a, fd, 0);
    if (got < 0) return;
    if (answer_keep(a, got, req->nlmsg_seq, 0) || a->err) return;
  }
}

// Waits up to timeout_ms for notifications on a subscribed socket, then takes every datagram
// queued. None within the timeout is an empty answer, not an error.
static void nl_receive(int fd, int timeout_ms, nl_answer *a) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int ready;
  do {
    ready = poll(&p, 1, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) {
    answer_fail(a, errno, "poll", "netlink");
    return;
  }
  if (ready == 0) return;
  for (;;) {
    ssize_t got = answer_recv(a, fd, MSG_DONTWAIT);
    if (got <= 0) return;
    answer_keep(a, got, 0, 1);
    if (a->err) return;
  }
}

// The answer as an array of Buffers, one per message; NULL after throwing.
static napi_value answer_messages(napi_env env, const nl_answer *a) {
  napi_value out;
  if (napi_create_array(env, &out) != napi_ok) return NULL;
  uint32_t count = 0;
  size_t off = 0;
  while (off + NLMSG_HDRLEN <= a->len) {
    const struct nlmsghdr *h = (const struct nlmsghdr *)(a->buf + off);
    napi_value msg;
    void *copy;
    if (napi_create_buffer_copy(env, h->nlmsg_len, h, &copy, &msg) != napi_ok) return NULL;
    napi_set_element(env, out, count++, msg);
    off += NLMSG_ALIGN(h->nlmsg_len);
  }
  return out;
}

static int check_request(napi_env env, const void *data, size_t len) {
  struct nlmsghdr req;
  if (len < sizeof req) {
    throw_type(env, "message shorter than a netlink header");
    return 0;
  }
  memcpy(&req, data, sizeof req);
  if (req.nlmsg_len != len) {
    throw_type(env, "message length field does not match the buffer");
    return 0;
  }
  if (!(req.nlmsg_flags & NLM_F_ACK) && (req.nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP) {
    throw_type(env, "request must set NLM_F_ACK or NLM_F_DUMP");
    return 0;
  }
  return 1;
}

// (fd, message) of request() and requestAsync(). A request must be answered even when it
// succeeds, or recv would wait for nothing.
static int get_request_args(napi_env env, napi_callback_info info, int32_t *fd, void **data, size_t *len) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return 0;
  if (!get_int(env, argv[0], fd, "fd must be a number")) return 0;
  if (!get_buffer(env, argv[1], data, len, "message must be a Buffer")) return 0;
  return check_request(env, *data, *len);
}

// ---- request(fd, message) -> Buffer[] ---------------------------------------------------------

static napi_value request(napi_env env, napi_callback_info info) {
  int32_t fd;
  void *data;
  size_t len;
  if (!get_request_args(env, info, &fd, &data, &len)) return NULL;
  nl_answer a = {0};
  nl_exchange(fd, data, len, &a);
  napi_value out = NULL;
  if (a.err) throw_errno(env, a.err, a.syscall, a.what);
  else out = answer_messages(env, &a);
  answer_free(&a);
  return out;
}

// ---- the threadpool: requestAsync(fd, message), receiveAsync(fd, timeoutMs) -> Promise<Buffer[]>
//
// The caller must not close fd while a job on it is pending: the worker thread is using it.

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  void *message; // a copy (the JS Buffer may be collected meanwhile); NULL for a receive
  size_t len;
  int timeout_ms;
  nl_answer answer;
} nl_job;

static void job_execute(napi_env env, void *data) {
  (void)env;
  nl_job *j = data;
  if (j->message) nl_exchange(j->fd, j->message, j->len, &j->answer);
  else nl_receive(j->fd, j->timeout_ms, &j->answer);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  nl_job *j = data;
  napi_value value = NULL;
  if (status != napi_ok) answer_fail(&j->answer, ECANCELED, j->message ? "sendto" : "recv", "netlink job cancelled");
  if (j->answer.err) {
    value = errno_error(env, j->answer.err, j->answer.syscall, j->answer.what);
    if (value) napi_reject_deferred(env, j->deferred, value);
  } else {
    value = answer_messages(env, &j->answer);
    if (value) napi_resolve_deferred(env, j->deferred, value);
  }
  if (!value) {
    // N-API itself failed: settle the promise anyway so no caller waits forever.
    napi_value fallback;
    napi_get_undefined(env, &fallback);
    napi_reject_deferred(env, j->deferred, fallback);
  }
  napi_delete_async_work(env, j->work);
  answer_free(&j->answer);
  free(j->message);
  free(j);
}

static napi_value start_job(napi_env env, nl_job *j) {
  napi_value promise, name;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "plexus:netlink", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work) != napi_ok) {
    free(j->message);
    free(j);
    return NULL;
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    free(j->message);
    free(j);
    return NULL;
  }
  return promise;
}

static napi_value request_async(napi_env env, napi_callback_info info) {
  int32_t fd;
  void *data;
  size_t len;
  if (!get_request_args(env, info, &fd, &data, &len)) return NULL;
  nl_job *j = calloc(1, sizeof *j);
  void *copy = malloc(len);
  if (!j || !copy) {
    free(j);
    free(copy);
    throw_errno(env, ENOMEM, "malloc", "netlink job");
    return NULL;
  }
  memcpy(copy, data, len);
  j->fd = fd;
  j->message = copy;
  j->len = len;
  return start_job(env, j);
}

static napi_value receive_async(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, timeout_ms;
  if (!get_args(env, info, 2, argv)) return NULL;
  if (!get_int(env, argv[0], &fd, "fd must be a number")) return NULL;
  if (!get_int(env, argv[1], &timeout_ms, "timeoutMs must be a number")) return NULL;
  if (timeout_ms < 0) {
    throw_type(env, "timeoutMs must not be negative");
    return NULL;
  }
  nl_job *j = calloc(1, sizeof *j);
  if (!j) {
    throw_errno(env, ENOMEM, "malloc", "netlink job");
    return NULL;
  }
  j->fd = fd;
  j->timeout_ms = timeout_ms;
  return start_job(env, j);
}

#endif
