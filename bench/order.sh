#!/bin/bash
# Write link/launch.order: the functions a launch runs, in the order
# callgrind first meets them, for lld's --symbol-ordering-file (build.rs).
# Placed together at the start of .text, they share a few pages instead of
# being spread over the whole 3 MB (each page fault maps 16 pages around
# it): ~17 fewer page faults per launch (bench/README.md, bench/variants.sh).
#
#   bash bench/order.sh [--bin PATH]           # needs valgrind; ~10 s
#   bash bench/order.sh --check [--bin PATH]   # how many of its names the
#                                              # binary has (exit 1 under 90%)
#
# The names are mangled with hashes that depend on the toolchain and the
# build settings: run it again after a toolchain update (names that no
# longer exist are ignored by the linker, so a stale file costs nothing but
# the gain). Launches recorded: the Debian config (envdir written, then
# unchanged, then from the kept plan), and a run file with nothing to do;
# final program /bin/true.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="" check=0
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$(realpath "$2"); shift ;;
    --check) check=1 ;;
    *) echo "bench/order.sh: unknown option $1" >&2; exit 100 ;;
  esac
  shift
done
if [ -z "$bin" ]; then
  cargo build --release -q --manifest-path "$root/Cargo.toml"
  bin=$root/target/release/courier-run
fi
# The main program beside the launcher (src/programs.rs): it computes; the
# launcher starts from a kept plan. One order file serves both.
main=$(dirname "$bin")/courier-run-main
if [ $check = 1 ]; then
  order=$root/link/launch.order
  total=$(wc -l < "$order")
  found=$( { nm --defined-only "$bin"; nm --defined-only "$main"; } | awk '{print $3}' | sort -u | grep -cFxf - "$order" || true)
  echo "link/launch.order: $found of $total functions are in $bin"
  [ $((found * 10)) -ge $((total * 9)) ] || { echo "bench/order.sh: stale: run bash bench/order.sh" >&2; exit 1; }
  exit 0
fi
command -v valgrind >/dev/null || { echo "bench/order.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
acct=${BENCH_ACCOUNT:-courierd}
id "$acct" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$acct"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$root/bench/fixture.sh"
debian_fixture "$work" "$acct"
printf 'layout=debian\nconfig=""\naccount=\nsoftlimit=""\naccess=\nenvdir=\nrules=\nserver=/bin/true\nbanner=no\nwait_authdaemond=no\n' > "$work/bare"
cd "$work"
# ./run three times, a second apart: the first computes and writes the
# envdir and the kept plan, the second computes again (a plan is trusted
# only once its inputs are a second old), both by the main program; the
# third is the launcher's, from the kept plan. All under valgrind: the
# plan's key names the main program as it ran, which is valgrind's here,
# so the launcher outside valgrind would not match it.
cg() {
  valgrind --tool=callgrind --demangle=no --dump-before=execve \
    --callgrind-out-file="$work/cg.%p" "$@" >/dev/null 2>&1
  sleep 1.1
}
cg "$main" ./run; cg "$main" ./run; cg "$bin" ./run; cg "$main" ./bare
{ nm --defined-only "$bin"; nm --defined-only "$main"; } | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u > "$work/text"
# fn=(id) name lines name each function once per file; later mentions
# give only the id. Keep the first-met order across the runs.
cat "$work"/cg.*.1 | /usr/bin/python3 -c '
import re, sys
text = set(open(sys.argv[1]).read().split())
seen, out = set(), []
for line in sys.stdin:
    m = re.match(r"^c?fn=\(\d+\) (.+)$", line)
    if m and m.group(1) in text and m.group(1) not in seen:
        seen.add(m.group(1))
        out.append(m.group(1))
print("\n".join(out))
' "$work/text" > "$root/link/launch.order"
echo "link/launch.order: $(wc -l < "$root/link/launch.order") functions" >&2
