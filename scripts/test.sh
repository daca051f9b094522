#!/usr/bin/env bash
# `make test`: the host suite (test/*.test.ts, node's test runner + tsx) with the reference plugins
# as the meta-plugin's delegates, the e2e suites once more with plexus's own plugins as delegates
# (in-process; test/helpers/plexus.ts), then the VM suite for the kernel features this machine
# lacks (scripts/vm/run.sh, once it exists; PLEXUS_SKIP_VM=1 skips it).
# `bash scripts/test.sh FILE...` runs only those files, once, with the caller's
# PLEXUS_TEST_DELEGATES (reference when unset, or builtin), without the VM suite.
#
# Ends with one line CI reads, `N passed, N failed[, N skipped]`, and exits non-zero on any
# failure. Why node:test and not tap: docs/decisions.md.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "test.sh: the tests create network namespaces and links: run as root (sudo make test)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
# Runtimes exec plugins with a clean environment; this machine's global CA bundle would add ~65 ms
# to every node start the tests make.
unset NODE_EXTRA_CA_CERTS

e2e=()
if [ $# -gt 0 ]; then
  files=("$@")
  host_delegates=${PLEXUS_TEST_DELEGATES:-reference}
  run_vm=false
else
  # Node 20's --test has no glob and ignores .ts when given none, "passing" with 0 tests: expand
  # here. Only the top level (subfolders hold helpers and fixtures), and not *.vm.test.ts: those
  # need the VM's kernel and run inside it (scripts/vm/run.sh).
  shopt -s nullglob
  files=()
  for f in test/*.test.ts; do [[ $f == *.vm.test.ts ]] || files+=("$f"); done
  # The built-in pass: e2e-builtin is left out because it already runs both sets explicitly.
  for f in test/e2e-*.test.ts; do [[ $f == test/e2e-builtin.test.ts ]] || e2e+=("$f"); done
  shopt -u nullglob
  host_delegates=reference
  run_vm=true
  [ -n "${PLEXUS_SKIP_VM:-}" ] && run_vm=false
  [ -f scripts/vm/run.sh ] || run_vm=false
fi
if [ ${#files[@]} -eq 0 ]; then
  echo "test.sh: no test files (test/*.test.ts): refusing to report success for zero tests" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

mkdir -p build
tap=build/test.tap
tap_builtin=build/test-builtin.tap
rm -f "$tap" "$tap_builtin"

# A test must leave the machine as it found it; what it leaves behind breaks the next run. Besides
# namespaces and links: the host-wide sysctls plexus's plugins write (forwarding for an isGateway
# bridge) or would write by mistake instead of a per-interface key, and the firewall rules
# (bridge masquerading, spoof checks), counters and set timeouts normalised away.
SYSCTLS=(net.ipv4.ip_forward net.ipv4.conf.all.forwarding net.ipv4.conf.default.forwarding
  net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding net.ipv6.conf.all.accept_ra
  net.ipv6.conf.default.accept_ra net.ipv6.conf.all.accept_dad net.ipv6.conf.default.accept_dad
  net.ipv4.conf.all.arp_notify net.ipv6.conf.all.ndisc_notify net.ipv4.conf.all.rp_filter)
rules() {
  local save
  for save in iptables-save ip6tables-save; do
    command -v "$save" >/dev/null || continue
    "$save" 2>/dev/null | awk -v t="$save" '/^#|^COMMIT/ {next} /^\*/ {tab=substr($0, 2); next} {gsub(/ \[[0-9]+:[0-9]+\]/, ""); print t " " tab " " $0}'
  done
  command -v nft >/dev/null || return 0
  nft list ruleset 2>/dev/null | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/; s/ expires [0-9a-z.]+//; s/^[[:space:]]+//' |
    awk '/^table / {tab=$2 " " $3; c=""; print "nft " tab; next} /^(chain|set|map|flowtable) / {c=$1 " " $2; print "nft " tab " " c; next} /^}$|^$/ {next} {print "nft " tab " " c ": " $0}'
}
snapshot() {
  {
    ip netns list 2>/dev/null | awk '{print "netns " $1}'
    ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print "link " $2}'
    local k
    for k in "${SYSCTLS[@]}"; do echo "sysctl $k=$(sysctl -n "$k" 2>/dev/null || echo absent)"; done
    rules
  } | sort
}
before=$(snapshot)

# Sequential files (they create kernel objects with fixed names); a per-test timeout so a hang
# fails that test instead of eating CI's time. The spec reporter is for people; the TAP copy ($1)
# is what we count. $2 is the delegate set, the rest the files.
run_files() {
  local out=$1 delegates=$2
  shift 2
  PLEXUS_TEST_DELEGATES=$delegates node --import tsx --test --test-concurrency=1 --test-timeout="${PLEXUS_TEST_TIMEOUT_MS:-300000}" \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$out" \
    "$@"
}

# the last "# pass N" (TAP) or "ℹ pass N" (spec) summary line in file $1, 0 when absent; \r
# removed because a VM's serial console ends lines with \r\n
count() { tr -d '\r' <"$1" 2>/dev/null | grep -aE "^(# |ℹ )$2 [0-9]+$" | tail -n 1 | grep -oE '[0-9]+$' || echo 0; }
passed=0
failed=0
skipped=0
# Adds a pass's counts from its TAP file $1; $2 is its runner's exit status, $3 names it.
tally() {
  local f
  f=$(( $(count "$1" fail) + $(count "$1" cancelled) ))
  passed=$((passed + $(count "$1" pass)))
  failed=$((failed + f))
  skipped=$(( skipped + $(count "$1" skipped) + $(count "$1" todo) ))
  if [ "$2" != 0 ] && [ "$f" = 0 ]; then
    echo "test.sh: the $3 runner exited $2 without reporting a failed test" >&2
    failed=$((failed + 1))
  fi
}

start=$SECONDS
run_files "$tap" "$host_delegates" "${files[@]}"
tally "$tap" $? "test"
host_s=$((SECONDS - start))

if [ ${#e2e[@]} -gt 0 ]; then
  echo
  echo "== e2e suites again, built-in delegates in-process (PLEXUS_TEST_DELEGATES=builtin) =="
  start=$SECONDS
  run_files "$tap_builtin" builtin "${e2e[@]}"
  tally "$tap_builtin" $? "built-in e2e"
  echo "test.sh: host suite ${host_s} s, built-in e2e pass $((SECONDS - start)) s"
fi

after=$(snapshot)
# New namespaces, links, sysctl values and rules; and sysctl values and rules that went away (a
# rule deleted, a value changed: the old line is gone). Links and namespaces that went away are
# someone else's on a shared machine.
leaks=$( (comm -13 <(echo "$before") <(echo "$after") | sed 's/^/+ /'; comm -23 <(echo "$before") <(echo "$after") | grep -E '^(sysctl|iptables|ip6tables|nft)' | sed 's/^/- /') )
if [ -n "$leaks" ]; then
  echo "test.sh: the tests changed the host (+ left behind, - gone or changed):" >&2
  sed 's/^/  /' <<<"$leaks" >&2
  # Fatal in CI, where nothing else runs; a warning on a shared dev machine, where someone
  # else's run may own them.
  if [ "${CI:-}" = true ]; then failed=$((failed + 1)); fi
fi

if $run_vm; then
  echo
  echo "== VM suite (scripts/vm/run.sh) =="
  vmlog=build/test-vm.log
  vmtap=build/test-vm.tap
  # The console shows the same spec report as the host suite; the counts come from the TAP copy
  # run.sh brings back, or from the console's "ℹ pass N" lines when the VM wrote none.
  PLEXUS_VM_TAP=$PWD/$vmtap bash scripts/vm/run.sh 2>&1 | tee "$vmlog"
  vm_rc=${PIPESTATUS[0]}
  [ -s "$vmtap" ] || vmtap=$vmlog
  vm_pass=$(count "$vmtap" pass)
  vm_fail=$(( $(count "$vmtap" fail) + $(count "$vmtap" cancelled) ))
  passed=$((passed + vm_pass))
  failed=$((failed + vm_fail))
  skipped=$(( skipped + $(count "$vmtap" skipped) + $(count "$vmtap" todo) ))
  if [ "$vm_rc" != 0 ] && [ "$vm_fail" = 0 ]; then
    echo "test.sh: the VM suite exited $vm_rc without reporting a failed test" >&2
    failed=$((failed + 1))
  elif [ "$vm_rc" = 0 ] && [ "$vm_pass" = 0 ] && [ "$vm_fail" = 0 ]; then
    echo "test.sh: the VM suite passed but reported no pass count: counted as 0 tests" >&2
  fi
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
