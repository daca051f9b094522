#!/usr/bin/env bash
# Prepare (once, cached under <repo>/.vm/) what scripts/vm/run.sh needs to boot Debian's own kernel
# in qemu: host packages, the bookworm kernel, an uncompressed vmlinux, and a busybox initramfs
# with the modules listed in scripts/vm/modules.conf (plus their dependencies).
#
# Idempotent: a second call only checks stamps and prints "cached" (a few ms).
# Writes <repo>/.vm/vm.env, which run.sh sources.
#
# Environment:
#   PLEXUS_VM_KERNEL_VERSION  pin a kernel, e.g. 6.1.0-56-amd64 (default: the newest one cached,
#                             or else the newest linux-image-6.1.0-*-amd64 apt-cache knows)
#   PLEXUS_VM_REFRESH=1       look up the newest kernel again even when one is cached
#   PLEXUS_VM_DIR             cache folder (default <repo>/.vm)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
vmdir=${PLEXUS_VM_DIR:-$repo/.vm}
t0=${EPOCHREALTIME/./}

say() { printf 'vm-prepare: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
elapsed() { local t=${EPOCHREALTIME/./}; printf '%d.%02d s' $(((t - $1) / 1000000)) $((((t - $1) / 10000) % 100)); }

mkdir -p "$vmdir"
# One prepare at a time per cache folder (two `make test-vm` in one checkout must not race).
exec 9>"$vmdir/.lock"
flock 9

as_root() { if [[ $EUID -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi; }

apt_updated=0
apt_update() {
  [[ $apt_updated -eq 1 ]] && return 0
  say "apt-get update"
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  apt_updated=1
}
# Run "$@" (an apt command); if it fails, refresh the package lists once and retry.
apt_retry() { "$@" || { apt_update && "$@"; }; }

# --- 1. host packages --------------------------------------------------------------------------
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
# /bin/busybox must be the static build: it is the initramfs's only binary.
[[ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null || true)" == *" installed" ]] || missing+=(busybox-static)
command -v xz >/dev/null || missing+=(xz-utils)
command -v flock >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  ts=${EPOCHREALTIME/./}
  say "installing ${missing[*]}"
  [[ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -m1 _Packages || true)" ]] || apt_update
  # Waits up to 10 min for the dpkg lock (unattended-upgrades on a fresh machine) instead of failing.
  apt_retry as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >&2
  say "installed ${missing[*]} in $(elapsed "$ts")"
fi
busybox=/bin/busybox
[[ -x $busybox ]] || die "$busybox missing after installing busybox-static"

# --- 2. kernel version ---------------------------------------------------------------------------
kre='^6\.1\.0-[0-9]+-amd64$'   # bookworm's generic flavour: the cloud one has no 9p, rt is slow
kver=${PLEXUS_VM_KERNEL_VERSION:-}
if [[ -z $kver && ${PLEXUS_VM_REFRESH:-0} != 1 ]]; then
  kver=$(shopt -s nullglob; for d in "$vmdir"/kernel/*/.done; do basename "$(dirname "$d")"; done | sort -V | tail -n1)
fi
if [[ -z $kver ]]; then
  newest() { apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sed 's/^linux-image-//' | grep -E "$kre" | sort -V | tail -n1; }
  kver=$(newest)
  [[ -n $kver ]] || { apt_update; kver=$(newest); }
  [[ -n $kver ]] || die "apt-cache knows no linux-image-6.1.0-*-amd64 (is the bookworm mirror configured?)"
  say "newest kernel in apt: $kver"
fi
[[ $kver =~ $kre ]] || die "kernel '$kver' is not a bookworm generic amd64 kernel (want 6.1.0-N-amd64)"
kdir=$vmdir/kernel/$kver
mdir=$kdir/lib/modules/$kver

# --- 3. download + extract the kernel package, depmod, vmlinux ------------------------------------
if [[ ! -e $kdir/.done ]]; then
  ts=${EPOCHREALTIME/./}
  rm -rf "$kdir"; mkdir -p "$kdir"
  dl=$(mktemp -d "$vmdir/dl.XXXXXX")
  say "apt-get download linux-image-$kver"
  (cd "$dl" && apt_retry apt-get download -q -o APT::Sandbox::User=root "linux-image-$kver" >&2)
  deb=$(ls "$dl"/linux-image-"$kver"_*.deb)
  dpkg -x "$deb" "$kdir"
  rm -rf "$dl"
  say "extracted $(basename "$deb") in $(elapsed "$ts")"

  # modules.dep is made by the package's postinst, which dpkg -x does not run. The host has no
  # kmod depmod; busybox's writes the format busybox modprobe reads. (~7 s for all 4,000 modules;
  # done once, so modules.conf can name any module without another download.)
  ts=${EPOCHREALTIME/./}
  $busybox depmod -b "$kdir" "$kver"
  say "depmod in $(elapsed "$ts")"

  # vmlinuz is a bzImage whose payload is an xz stream (xz stops at its end, trailing data is
  # ignored, hence --single-stream and no pipe that pipefail would see die of SIGPIPE): the uncompressed ELF vmlinux boots
  # directly through PVH (qboot), about twice as fast as decompressing vmlinuz in TCG.
  ts=${EPOCHREALTIME/./}
  vmlinuz=$kdir/boot/vmlinuz-$kver
  off=$(LC_ALL=C grep -obUaP -m1 '\xfd7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1 || true)
  if [[ -n $off ]] && xz -dc --single-stream < <(tail -c +$((off + 1)) "$vmlinuz" 2>/dev/null) >"$kdir/vmlinux" 2>/dev/null &&
    [[ "$(head -c4 "$kdir/vmlinux" | od -An -tx1 | tr -d ' ')" == 7f454c46 ]]; then
    say "vmlinux extracted at offset $off ($(du -h "$kdir/vmlinux" | cut -f1)) in $(elapsed "$ts")"
  else
    rm -f "$kdir/vmlinux"
    say "no xz payload found in vmlinuz: will boot vmlinuz through the BIOS (slower)"
  fi
  touch "$kdir/.done"
fi

# --- 4. initramfs -------------------------------------------------------------------------------
conf=$here/modules.conf
initrd=$vmdir/initramfs-$kver.cpio
key=$( { cat "$conf" "$here/init.sh" "$here/prepare.sh"; echo "$kver"; dpkg-query -W -f='${Version}' busybox-static; } | sha256sum | cut -c1-16)
if [[ ! -e $initrd || "$(cat "$initrd.key" 2>/dev/null)" != "$key" ]]; then
  ts=${EPOCHREALTIME/./}
  [[ -e $mdir/modules.dep ]] || $busybox depmod -b "$kdir" "$kver"
  # Resolve the modules.conf list to files, plus the transitive closure of their dependencies.
  mapfile -t wanted < <(grep -v '^[[:space:]]*#' "$conf" | awk 'NF {print $1, ($2 == "" ? "demand" : $2)}')
  boot=() ; names=()
  for w in "${wanted[@]}"; do
    read -r name when <<<"$w"
    case $when in boot | demand) ;; *) die "modules.conf: '$name $when': second word must be boot or demand" ;; esac
    n_=${name//-/_}; n__=${name//_/-}
    if grep -qE "/($n_|$n__)\.ko(\.[a-z]+)?$" "$mdir/modules.builtin"; then
      say "note: $name is built into $kver, nothing to pack"; continue
    fi
    grep -qE "/($n_|$n__)\.ko(\.[a-z]+)?:" "$mdir/modules.dep" || die "modules.conf: no module '$name' in $kver"
    names+=("$name")
    [[ $when == boot ]] && boot+=("$name")
  done
  files=$(awk -v want="${names[*]}" '
    { sub(/:$/, "", $1); path = $1; base = path; sub(/.*\//, "", base); sub(/\.ko.*$/, "", base)
      gsub(/-/, "_", base); file[base] = path; deps[path] = ""
      for (i = 2; i <= NF; i++) deps[path] = deps[path] " " $i }
    END {
      n = split(want, w, " ")
      for (i = 1; i <= n; i++) { b = w[i]; gsub(/-/, "_", b); q[++tail] = file[b] }
      while (head < tail) {
        p = q[++head]; if (p in seen) continue; seen[p] = 1; print p
        m = split(deps[p], d, " "); for (j = 1; j <= m; j++) if (!(d[j] in seen)) q[++tail] = d[j]
      }
    }' <(sed 's/:/: /' "$mdir/modules.dep"))

  stage=$(mktemp -d "$vmdir/initramfs.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage"/{bin,sbin,etc/plexus-vm,proc,sys,dev,tmp,newroot,mnt/{root,repo,vm,rw}} "$stage/lib/modules/$kver"
  cp "$busybox" "$stage/bin/busybox"
  # Only the applets /init uses get links; `ip` deliberately has none (busybox's ip has no
  # ipvlan/netns support, and the tests use iproute2's /usr/sbin/ip inside the chroot anyway).
  for a in sh mount umount mkdir cat echo sleep dmesg dd printf chroot stty ls cut tr head tail grep sed \
    env timeout hostname poweroff sync uname; do
    ln -s busybox "$stage/bin/$a"
  done
  # The kernel's request_module() runs /sbin/modprobe from the initramfs root (kthreadd's root
  # never follows the tests' chroot), so demand-loaded modules come from here.
  ln -s ../bin/busybox "$stage/sbin/modprobe"
  ln -s ../bin/busybox "$stage/sbin/insmod"
  count=0
  while IFS= read -r f; do
    [[ -n $f ]] || continue
    mkdir -p "$stage/lib/modules/$kver/$(dirname "$f")"
    cp "$mdir/$f" "$stage/lib/modules/$kver/$f"
    count=$((count + 1))
  done <<<"$files"
  cp "$mdir/modules.builtin" "$mdir/modules.order" "$stage/lib/modules/$kver/" 2>/dev/null || true
  $busybox depmod -b "$stage" "$kver"
  printf '%s\n' "${boot[@]}" >"$stage/etc/plexus-vm/modules.boot"
  echo "$kver" >"$stage/etc/plexus-vm/kver"
  install -m 0755 "$here/init.sh" "$stage/init"
  # Uncompressed: unpacking is cheaper than gunzip under TCG, and the file only lives in the cache.
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | $busybox cpio -o -H newc -R 0:0 2>/dev/null) >"$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  echo "$key" >"$initrd.key"
  rm -rf "$stage"; trap - EXIT
  say "initramfs: busybox + $count modules (${#boot[@]} loaded at boot), $(du -h "$initrd" | cut -f1), built in $(elapsed "$ts")"
fi

# --- 5. how to boot it ----------------------------------------------------------------------------
qboot=/usr/share/qemu/qboot.rom
if [[ -e $kdir/vmlinux && -e $qboot ]]; then
  kernel=$kdir/vmlinux; bios=$qboot
else
  kernel=$kdir/boot/vmlinuz-$kver; bios=
  [[ -e $qboot ]] || say "note: $qboot missing: booting vmlinuz with qemu's default BIOS (slower)"
fi
envf=$vmdir/vm.env
new=$(printf 'PLEXUS_VM_KVER=%q\nPLEXUS_VM_KERNEL=%q\nPLEXUS_VM_BIOS=%q\nPLEXUS_VM_INITRD=%q\n' "$kver" "$kernel" "$bios" "$initrd")
# Written atomically: a concurrent run.sh may be sourcing it.
[[ "$(cat "$envf" 2>/dev/null)" == "$new" ]] || { printf '%s\n' "$new" >"$envf.$$" && mv "$envf.$$" "$envf"; }
say "ready: $kver, $(basename "$kernel")${bios:+ via $(basename "$bios")}, $(basename "$initrd") ($(elapsed "$t0"))"
