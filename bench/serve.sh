#!/bin/bash
# Time to serve: what an admin feels on a restart. From the exec of a service's
# start (a run file exec'd as supervise execs it, or Debian's `imapd start`) to
# the port answering with the IMAP greeting ("* OK"), and from `svc -t` under
# supervise to a greeting from the NEW process. Loopback only; each
# measurement bounded; every file written in a temp dir except the output.
#
#   bash bench/serve.sh [--runs N] [--out FILE] [--bin COURIER-RUN] [--timeout S]
#
# Writes the table to FILE (bench/serve.md) and the chart beside it
# (bench/serve.png).
#
# Needs root (the account `courier`, Debian's rc), courier-imap, daemontools,
# ucspi-tcp, ipsvd, python3. authdaemond is not needed: imaplogin greets
# before anyone logs in, so every row runs with wait_authdaemond=no.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
runs=20 out=$root/bench/serve.md bin="" timeout=10
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift ;;
    --out) out=$2; shift ;;
    --bin) bin=$(realpath "$2"); shift ;;
    --timeout) timeout=$2; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "serve.sh: unknown argument $1 (see --help)" >&2; exit 100 ;;
  esac
  shift
done
case $runs in ''|*[!0-9]*|0) echo "serve.sh: --runs wants a positive number, not '$runs'" >&2; exit 100 ;; esac
say() { echo "serve.sh: $*" >&2; }

for p in couriertcpd courierlogger tcpserver tcpsvd envuidgid envdir supervise svc svstat python3; do
  command -v $p >/dev/null || { say "$p is missing (see .ci/install)"; exit 111; }
done
[ -x /usr/sbin/imapd ] || { say "/usr/sbin/imapd (Debian's rc, courier-imap) is missing"; exit 111; }
if [ -z "$bin" ]; then
  say "building the release binary (cargo build --release)"
  cargo build --release -q --manifest-path "$root/Cargo.toml"
  bin=$root/target/release/courier-run
fi
helper=$root/bench/serve.py

work=$(mktemp -d "${TMPDIR:-/tmp}/courier-run-serve.XXXXXX")
chmod 755 "$work" # imapd runs as courier and must reach its Maildir argument's cwd
svpid=""
cleanup() {
  # supervise: stop the service, then supervise itself.
  # svc is asynchronous: wait (5 s at most) for supervise to take the service
  # down and exit, before anything is killed by pid.
  if [ -n "$svpid" ]; then
    local child i
    # The child's pid from supervise's status file (bytes 12..15), readable
    # even when supervise is gone.
    child=$(od -An -tu4 -j12 -N4 "$work/sv/supervise/status" 2>/dev/null | tr -d ' ')
    svc -dx "$work/sv" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$svpid" 2>/dev/null || break; sleep 0.1; done
    if [ -n "$child" ] && [ "$child" != 0 ]; then kill "$child" 2>/dev/null || true; fi
    kill "$svpid" 2>/dev/null || true
    wait "$svpid" 2>/dev/null || true
  fi
  # Debian's rc: courierlogger daemonises; its pid file is in $work.
  if [ -f "$work/rc/imapd.pid" ]; then sh "$work/rc/rc" stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Debian 12's config copies, pointed into the work dir: the pid file, the
# access list (and its .dat), the TLS session cache the start resets.
configs() { # configs DIR PORT: DIR/imapd, DIR/imapd-ssl on 127.0.0.1:PORT
  local d=$1 port=$2
  mkdir -p "$d"
  sed -e "s#^PORT=.*#PORT=$port#" -e 's#^ADDRESS=.*#ADDRESS=127.0.0.1#' \
      -e "s#^PIDFILE=.*#PIDFILE=$d/imapd.pid#" \
      -e "s#^IMAPACCESSFILE=.*#IMAPACCESSFILE=$d/imapaccess#" \
      "$root/bench/fixtures/imapd" > "$d/imapd"
  sed -e "s#^TLS_CACHEFILE=.*#TLS_CACHEFILE=$d/sslcache#" \
      "$root/bench/fixtures/imapd-ssl" > "$d/imapd-ssl"
  # Debian's access list (a directory of files, empty as shipped) and the
  # makedat database Debian's rc and couriertcpd read.
  mkdir -p "$d/imapaccess"
  if [ -d /etc/courier/imapaccess ]; then cp -r /etc/courier/imapaccess/. "$d/imapaccess/"; fi
  # (-cidr needs Perl's Net::CIDR; without it, Debian's built database.)
  makedat -src="$d/imapaccess" -file="$d/imapaccess.dat" -tmp="$d/imapaccess.tmp" -cidr 2>/dev/null ||
    cp /etc/courier/imapaccess.dat "$d/imapaccess.dat"
}
port() { python3 "$helper" port; }

names=() results=()
measure() { # measure NAME serve.py-ARGS...
  local name=$1; shift
  say "$name: $runs runs"
  local times
  times=$(python3 "$helper" "$@") || { say "$name: failed"; exit 111; }
  names+=("$name"); results+=("$(echo "$times" | tr '\n' ' ')")
}

# 1. courier-run with each front end: the run file is exec'd as supervise
# execs it (its #! line names courier-run), in its service dir.
n=0
for server in couriertcpd "tcpserver -v -RH -l0" "tcpsvd -v"; do
  n=$((n + 1)); d=$work/cr$n; p=$(port)
  configs "$d" "$p"
  cat > "$d/run" <<EOR
#!$bin
layout=debian
config="./imapd ./imapd-ssl"
envdir=./env
account=courier
server="$server"
address=127.0.0.1
port=$p
wait_authdaemond=no
EOR
  chmod 755 "$d/run"
  measure "courier-run, server=${server%% *}" start "$p" "$runs" "$timeout" "$d" -- ./run
done

# 2. The recipe's classic run script (as bench/run.sh builds it): the sed/awk
# conf2env, then envuidgid envdir tcpserver and the login chain.
d=$work/classic; p=$(port)
configs "$d" "$p"
cat > "$d/run" <<EOR
#!/bin/sh
exec 2>&1
cat ./imapd ./imapd-ssl | $root/bench/classic-conf2env ./env
exec envuidgid courier envdir ./env tcpserver -v -RH -l0 -c 40 127.0.0.1 $p \\
  /usr/lib/courier/courier/imaplogin /usr/bin/imapd Maildir
EOR
chmod 755 "$d/run"
measure "classic script (conf2env + envuidgid envdir tcpserver)" start "$p" "$runs" "$timeout" "$d" -- ./run

# 3. Debian's rc: a copy of /usr/sbin/imapd reading the copies above (its
# /etc/courier paths rewritten), `start` timed to the greeting, then `stop`.
d=$work/rc; p=$(port)
configs "$d" "$p"
sed -e "s#/etc/courier/imapd#$d/imapd#g" /usr/sbin/imapd > "$d/rc"
if grep -q /etc/courier/imapd "$d/rc"; then say "Debian's rc still reads /etc/courier after the rewrite"; exit 111; fi
measure "Debian's rc: imapd start (sh, courierlogger, couriertcpd)" \
  start "$p" "$runs" "$timeout" "$d" --stop "sh ./rc stop" -- sh ./rc start

# 4. Restart to serving under daemontools: courier-run (couriertcpd) in a
# service dir run by supervise; `svc -t`, until a new process greets.
d=$work/sv; p=$(port)
configs "$d" "$p"
sed -e "s#^port=.*#port=$p#" -e 's#^server=.*#server="couriertcpd"#' "$work/cr1/run" > "$d/run"
chmod 755 "$d/run"
# Its own session, so that a signal to this script's group leaves it to the
# trap to take the service down in order.
setsid supervise "$d" >>"$work/supervise.log" 2>&1 &
svpid=$!
measure "supervise, svc -t (courier-run, server=couriertcpd)" restart "$p" "$runs" "$timeout" "$d"

# The table: min, median, max in ms.
{
  echo "| start | min ms | median ms | max ms |"
  echo "|---|---:|---:|---:|"
  for i in "${!names[@]}"; do
    # shellcheck disable=SC2086 # the times, one word each
    python3 -c 'import statistics, sys
t = sorted(float(x) for x in sys.argv[2:])
print(f"| {sys.argv[1]} | {t[0]:.1f} | {statistics.median(t):.1f} | {t[-1]:.1f} |")' "${names[$i]}" ${results[$i]}
  done
  echo
  echo "$runs runs each, loopback, greeting \`* OK\`; $(nproc) CPUs, $(uname -srm); $(date -u +%Y-%m-%d); commit $(git -C "$root" describe --always 2>/dev/null || echo unknown)."
} | tee "$out"

# The chart beside the table (FILE.png for --out FILE.md): every run of
# every row as a dot, the median as a bar, on a log scale (the rows span
# 3 ms to 80 ms). Needs Debian's python3-matplotlib, by /usr/bin/python3
# (bench/run.sh installs it).
chart=${out%.md}.png
for i in "${!names[@]}"; do printf '%s\t%s\n' "${names[$i]}" "${results[$i]}"; done > "$work/times.tsv"
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  /usr/bin/python3 - "$work/times.tsv" "$chart" "$runs" <<'EOPY'
import statistics, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
names = [r[0] for r in rows]
times = [[float(x) for x in r[1].split()] for r in rows]
fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.4))
for y, t in enumerate(times):
    ax.barh(y, statistics.median(t), color="#cfd8e3", height=0.6)
    ax.plot(t, [y] * len(t), "|", color="#1f4e79", markersize=10)
ax.set_yticks(range(len(names)), names, fontsize=8)
ax.invert_yaxis()
ax.set_xscale("log")
ax.set_xlabel("ms from the start's exec to the IMAP greeting (bar: median; ticks: each of %s runs)" % sys.argv[3])
ax.set_title("Time to serve, loopback")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
EOPY
  say "wrote $chart"
else
  say "no chart: python3-matplotlib is missing (apt-get install python3-matplotlib)"
fi
