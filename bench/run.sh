#!/bin/bash
# Launch cost, side by side in one hyperfine run: from "supervise runs ./run"
# to the exec of the server, for the classic shell run script and for
# courier-run, on Debian 12's /etc/courier/imapd. The server is /bin/true so
# that only the launcher is measured. Also: peak RSS (GNU time) and, when
# strace is installed, the syscalls of one launch.
#
#   bash bench/run.sh            # needs hyperfine, daemontools, GNU time
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -q --manifest-path "$root/Cargo.toml"
bin=$root/target/release/courier-run
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/tests/fixtures/debian12/imapd" "$work/imapd"
cd "$work"
cat > run <<EOR
layout=debian
config=./imapd
account=nobody
softlimit="-m 50000000"
server=/bin/true
banner=no
EOR
cat > classic <<EOR
#!/bin/sh
exec 2>&1
cat ./imapd | $root/bench/classic-conf2env ./env-classic
exec envuidgid nobody envdir ./env-classic softlimit -m 50000000 /bin/true
EOR
chmod +x classic
"$bin" ./run   # first launch writes ./env; the measured ones find it unchanged
hyperfine -N --warmup 20 --runs 300 \
  --command-name 'classic run script (sed/awk conf2env + envuidgid envdir softlimit)' "sh ./classic" \
  --command-name 'daemontools chain only (envuidgid envdir softlimit), no conversion' \
    "envuidgid nobody envdir ./env-classic softlimit -m 50000000 /bin/true" \
  --command-name 'courier-run ./run (envdir unchanged)' "$bin ./run" \
  --command-name 'courier-run ./run --dry-run --format json' "$bin ./run --dry-run --format json"

echo
echo "peak RSS (KiB, max of 20 runs; GNU time %M):"
rss() {
  local m=0 v
  for _ in $(seq 20); do
    /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>&1 || true
    v=$(tail -n 1 "$work/rss")
    [ "$v" -gt "$m" ] && m=$v
  done
  echo "$m"
}
printf '  %-40s %s\n' "sh ./classic (sh itself)" "$(rss sh ./classic)"
printf '  %-40s %s\n' "courier-run ./run" "$(rss "$bin" ./run)"
printf '  %-40s %s\n' "courier-run --dry-run --format json" "$(rss "$bin" ./run --dry-run --format json)"
if command -v strace >/dev/null; then
  echo
  echo "syscalls of one launch, /bin/true's own included (strace -f -c):"
  strace -f -c -o strace.txt "$bin" ./run >/dev/null 2>&1 || true
  tail -n 3 strace.txt
  strace -f -c -o strace-classic.txt sh ./classic >/dev/null 2>&1 || true
  echo "classic script (all processes):"; tail -n 3 strace-classic.txt
fi
