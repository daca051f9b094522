#!/bin/sh
# /init of the plexus test VM (busybox ash, PID 1). Packed into the initramfs by prepare.sh;
# scripts/vm/run.sh boots it. It:
#   1. loads the modules listed "boot" in modules.conf,
#   2. mounts the host's root (9p, read-only) under an overlay whose upper layer is a tmpfs,
#      fresh tmpfs on /tmp, /run, /dev/shm, and the repo at its own path when those hide it,
#   3. chroots and runs the host-written cmd.sh with dash (the host's /bin/sh) in a clean
#      environment,
#   4. reports the exit status through isa-debug-exit (port 0xf4) and a file in the run folder.
# Every line it prints starts with "# vm:", apart from the test report on the same console.
#
# Shares (virtio-9p): hostroot = the host's /, read-only; vmcache = <repo>/.vm, read-write (this
# run's folder runs/$PLEXUS_RUN, and tsx-cache/); repo = the checkout, only when it lives under a
# path the chroot's own mounts hide (/tmp, /run, ...) or when it is exported read-write.
# PLEXUS_RUN comes from the kernel command line (init gets KEY=value words as environment).
#
# Statuses it reports besides the tests' own (0-119): 120 the VM setup failed, 121 cmd.sh could
# not cd to the repo, 124 the guest-side time limit hit, 126 the tests died of a signal.

export PATH=/sbin:/bin
say() { echo "# vm: $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
run=

finish() {
  code=$1
  [ -n "$run" ] && echo "$code" >"$run/status"
  sync
  # Let the UART drain before qemu exits (stty's tcsetattr waits for pending output).
  stty -F /dev/ttyS0 >/dev/null 2>&1
  # isa-debug-exit: qemu exits with (code << 1) | 1.
  printf "\\$(printf %03o "$code")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
  sleep 1
  say "could not write the exit status to port 0xf4; powering off"
  poweroff -f
}

fail() {
  say "FATAL: $*"
  dmesg | tail -n 25 | sed 's/^/# vm: dmesg: /'
  finish 120
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
t_init=$(uptime_s)

kver=$(cat /etc/plexus-vm/kver)
[ "$(uname -r)" = "$kver" ] || fail "kernel $(uname -r) booted with the initramfs for $kver"
# shellcheck disable=SC2046
modprobe -a $(cat /etc/plexus-vm/modules.boot) || {
  for m in $(cat /etc/plexus-vm/modules.boot); do modprobe "$m" || fail "modprobe $m"; done
}
t_mod=$(uptime_s)
# From here on only emergencies reach the console (they would split report lines); errors are
# replayed as "# vm: dmesg:" comments after the tests.
dmesg -n 1

p9='trans=virtio,version=9p2000.L,msize=512000'
mount -t 9p -o "$p9,ro,cache=loose" hostroot /mnt/root || fail "mount the host root over 9p"
mount -t 9p -o "$p9,rw,cache=none" vmcache /mnt/vm || fail "mount the .vm share"
[ -n "$PLEXUS_RUN" ] || fail "no PLEXUS_RUN=... on the kernel command line"
run=/mnt/vm/runs/$PLEXUS_RUN
[ -f "$run/in/cmd.sh" ] || { r=$run; run=; fail "no $r/in/cmd.sh"; }
repo=$(cat "$run/in/repo")
repo_share=$(cat "$run/in/repo_share")
tsx_cache=$(cat "$run/in/tsx_cache")
limit=$(cat "$run/in/limit")

mount -t tmpfs -o mode=0755 tmpfs /mnt/rw || fail "tmpfs for the overlay"
mkdir -p /mnt/rw/upper /mnt/rw/work /mnt/rw/repo-upper /mnt/rw/repo-work
mount -t overlay -o lowerdir=/mnt/root,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work overlay /newroot ||
  fail "overlay over the host root"

n=/newroot
mount -t proc proc $n/proc || fail "proc in the chroot"
mount -t sysfs sysfs $n/sys || fail "sysfs in the chroot"
mount -t cgroup2 cgroup2 $n/sys/fs/cgroup 2>/dev/null
mount -t devtmpfs devtmpfs $n/dev || fail "devtmpfs in the chroot"
mkdir -p $n/dev/pts $n/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $n/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $n/dev/shm
mount -t tmpfs -o mode=0755 tmpfs $n/run || fail "tmpfs /run"
mount -t tmpfs -o mode=1777 tmpfs $n/tmp || fail "tmpfs /tmp"
mkdir -p $n/run/plexus-vm
mount -o bind "$run" $n/run/plexus-vm || fail "bind the run folder into the chroot"
# tsx's transform cache (os.tmpdir()/tsx-<uid>) persists across runs in .vm/tsx-cache: with it
# warm, a node process need not start esbuild (seconds under TCG).
if [ "$tsx_cache" = 1 ]; then
  mkdir -p /mnt/vm/tsx-cache $n/tmp/tsx-0
  mount -o bind /mnt/vm/tsx-cache $n/tmp/tsx-0 || fail "bind the tsx cache"
fi

# The checkout. Default: seen through the root overlay, so tests may write into it and what they
# write vanishes at power-off (the host checkout is never touched). When /tmp or /run's tmpfs
# hides it, its own read-only share gets the same overlay treatment at the same path; with
# PLEXUS_VM_REPO_RW=1 its share is mounted read-write and writes reach the host.
case $repo_share in
  ro)
    mkdir -p "$n$repo" || fail "mkdir $repo in the chroot"
    mount -t 9p -o "$p9,ro,cache=loose" repo /mnt/repo || fail "mount the repo share"
    mount -t overlay -o lowerdir=/mnt/repo,upperdir=/mnt/rw/repo-upper,workdir=/mnt/rw/repo-work overlay "$n$repo" ||
      fail "overlay over the repo"
    ;;
  rw)
    mkdir -p "$n$repo" || fail "mkdir $repo in the chroot"
    mount -t 9p -o "$p9,rw,cache=mmap" repo "$n$repo" || fail "mount the repo share read-write"
    ;;
esac
[ -d "$n$repo" ] || fail "$repo not visible in the chroot"

busybox ip link set lo up || fail "bring lo up"
hostname plexus-vm

say "kernel $kver: init at $t_init s, modules loaded at $t_mod s, chroot ready at $(uptime_s) s (uptime)"
t=$limit
[ "$t" -gt 60 ] 2>/dev/null && t=$((t - 30))
timeout -s KILL "$t" chroot $n /usr/bin/env -i \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb \
  /bin/sh /run/plexus-vm/in/cmd.sh </dev/null
code=$?
end=$(uptime_s)
case $code in
  0) ;;
  137) say "the tests hit the time limit inside the VM ($t s)"; code=124 ;;
  *) [ "$code" -gt 121 ] && { say "the tests ended with status $code (signal or out of range)"; code=126; } ;;
esac
dmesg -r | grep -E '^<[0-3]>' | sed 's/^<[0-9]>/# vm: dmesg: /'
say "tests exited with status $code at $end s uptime"
finish "$code"
