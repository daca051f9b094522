// N-API plumbing for plexus_netns.c: typed argument readers and errno-carrying JS errors.
// Included once, by plexus_netns.c (one translation unit, so the build stays one gcc command).
#ifndef PLEXUS_NAPI_H
#define PLEXUS_NAPI_H

#include <node_api.h> // after plexus_netns.c has chosen NAPI_VERSION

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *errno_name(int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(EBADF) E(EAGAIN) E(ENOMEM)
    E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL)
    E(ENFILE) E(EMFILE) E(ENOSPC) E(EROFS) E(EMLINK) E(EPIPE) E(ERANGE) E(ENAMETOOLONG)
    E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENOMSG) E(ENODATA) E(EPROTO) E(EBADMSG) E(EOVERFLOW)
    E(EMSGSIZE) E(EPROTOTYPE) E(ENOPROTOOPT) E(EPROTONOSUPPORT) E(EOPNOTSUPP) E(EAFNOSUPPORT)
    E(EADDRINUSE) E(EADDRNOTAVAIL) E(ENETDOWN) E(ENETUNREACH) E(ENOBUFS) E(ENOTCONN)
    E(ETIMEDOUT) E(ECONNREFUSED) E(EHOSTUNREACH) E(EALREADY) E(EINPROGRESS)
    E(ENOLINK) E(EDQUOT) E(ECANCELED) E(ENOKEY) E(EUSERS) E(ESOCKTNOSUPPORT) E(EPFNOSUPPORT)
#undef E
    default: return NULL;
  }
}

// An Error carrying .errno, .code and .syscall, like Node's own system errors; NULL if N-API failed.
static napi_value errno_error(napi_env env, int err, const char *syscall, const char *what) {
  char msg[PATH_MAX + 128];
  const char *name = errno_name(err);
  char fallback[24];
  if (!name) {
    snprintf(fallback, sizeof fallback, "E%d", err);
    name = fallback;
  }
  snprintf(msg, sizeof msg, "%s %s: %s (%s)", syscall, what ? what : "", strerror(err), name);
  napi_value message, error, errno_value, code_value, syscall_value;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok) return NULL;
  if (napi_create_error(env, NULL, message, &error) != napi_ok) return NULL;
  napi_create_int32(env, err, &errno_value);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "code", code_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  return error;
}

static void throw_errno(napi_env env, int err, const char *syscall, const char *what) {
  napi_value error = errno_error(env, err, syscall, what);
  if (error) napi_throw(env, error);
}

static void throw_type(napi_env env, const char *msg) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg); }

// ---- argument helpers: each returns 0 after throwing -------------------------------------------

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < want) {
    throw_type(env, "too few arguments");
    return 0;
  }
  return 1;
}

// A null or undefined path means "the namespace this thread is in": no switch at all.
static int get_optional_path(napi_env env, napi_value v, char *out, size_t cap, int *present) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t == napi_null || t == napi_undefined) {
    *present = 0;
    return 1;
  }
  if (t != napi_string) {
    throw_type(env, "namespace path must be a string or null");
    return 0;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, out, cap, &len) != napi_ok) return 0;
  if (len == 0 || len >= cap - 1) {
    throw_type(env, "namespace path is empty or too long");
    return 0;
  }
  *present = 1;
  return 1;
}

static int get_string(napi_env env, napi_value v, char *out, size_t cap, const char *what) {
  napi_valuetype t;
  size_t len = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t != napi_string) {
    throw_type(env, what);
    return 0;
  }
  if (napi_get_value_string_utf8(env, v, out, cap, &len) != napi_ok) return 0;
  if (len >= cap - 1) {
    throw_type(env, what);
    return 0;
  }
  return 1;
}

static int get_int(napi_env env, napi_value v, int32_t *out, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t != napi_number) {
    throw_type(env, what);
    return 0;
  }
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static int get_buffer(napi_env env, napi_value v, void **data, size_t *len, const char *what) {
  bool is_buffer = false;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok) return 0;
  if (!is_buffer) {
    throw_type(env, what);
    return 0;
  }
  return napi_get_buffer_info(env, v, data, len) == napi_ok;
}

#endif
