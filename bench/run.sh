#!/bin/bash
# The launch benchmark of courier-run, in one command:
#
#   bash bench/run.sh            # full run (~10-15 min on 2 cores): writes
#                                # bench/results.md and bench/scaling.png
#   bash bench/run.sh --quick    # smoke run (< 60 s): every case a couple of
#                                # times, results in the work dir only
#
# Options: --quick, --no-install (fail instead of apt-get installing what is
# missing), --bin PATH (use this courier-run instead of building the release
# binary), --out DIR (where results.md and scaling.png go; default bench/ for
# a full run, the work dir for --quick), --keep (keep the work dir).
# Environment: BENCH_DIR (parent of the work dir; default /dev/shm, a tmpfs,
# else /tmp), BENCH_ACCOUNT (the account of envuidgid/chpst -U/courier-run;
# default courierd, created with useradd --system when missing), BENCH_CAP
# (seconds: a scaling cell whose first run takes longer is reported from that
# one run, and a size whose predicted time exceeds it is skipped; default 30).
#
# What it measures, with /bin/true as the final program so that only the
# launcher counts: (a) one hyperfine run of every launcher side by side on
# Debian 12's /etc/courier/imapd + imapd-ssl (bench/fixtures/); (b) the
# scaling of courier-run, chpst -e and the classic script with the number of
# variables (bench/gen-config), with peak RSS from GNU time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
quick=0 install=1 bin="" out="" keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    --bin) bin=$(realpath "$2"); shift ;;
    --out) mkdir -p "$2"; out=$(cd "$2" && pwd); shift ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 100 ;;
  esac
  shift
done
acct=${BENCH_ACCOUNT:-courierd}
cap=${BENCH_CAP:-30}
py=/usr/bin/python3
say() { printf '== %s\n' "$*" >&2; }

# --- what it needs -----------------------------------------------------------
need=()
for pair in hyperfine:hyperfine chpst:runit envdir:daemontools envuidgid:daemontools \
            softlimit:daemontools s6-envdir:s6 s6-envuidgid:s6 s6-softlimit:s6 \
            cc:gcc /usr/bin/time:time $py:python3 awk:mawk sed:sed; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ -x $py ] && $py -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib)
if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if [ $install = 0 ]; then
    echo "bench/run.sh: missing Debian packages: ${need[*]} (run without --no-install to install them)" >&2
    exit 1
  fi
  say "installing the missing Debian packages with apt-get: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if ! id "$acct" >/dev/null 2>&1; then
  say "creating the system account $acct (useradd --system), used by envuidgid, chpst -U and courier-run"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$acct"
fi

# --- the programs ---------------------------------------------------------------
if [ -z "$bin" ]; then
  say "building the release binary (cargo build --release)"
  cargo build --release -q --manifest-path "$root/Cargo.toml"
  bin=$root/target/release/courier-run
fi
# The main program the launcher execs for all but a kept plan's start
# (src/programs.rs): beside it, as cargo builds them.
main=$(dirname "$bin")/courier-run-main
base=${BENCH_DIR:-$( [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo /tmp )}
work=$(mktemp -d "$base/courier-run-bench.XXXXXX")
if [ $keep = 0 ]; then trap 'rm -rf "$work"' EXIT; else say "work dir kept: $work"; fi
if [ -z "$out" ]; then
  if [ $quick = 1 ]; then out=$work; else out=$root/bench; fi
fi
cd "$work"
cc -O2 -o floor "$root/bench/floor.c"
cp "$root/bench/fixtures/imapd" "$root/bench/fixtures/imapd-ssl" "$root/bench/perturb" .
# The TLS cache in the work dir: Debian's /var/lib/courier belongs to courier,
# and courier-run refuses to reset a cache for another account ($acct) there.
printf 'TLS_CACHEFILE=%s/tlscache\n' "$work" >> imapd-ssl
# The config is a TLS service (IMAPDSTARTTLS=YES): a launch reads and checks
# TLS_CERTFILE as the account that opens it, and refuses a certificate it
# cannot read. Debian's /etc/courier/imapd.pem is root:courier 0640, and
# $work is private: a copy of the test certificate the account can read.
cert=$(mktemp "$base/courier-run-bench-cert.XXXXXX")
if [ $keep = 0 ]; then trap 'rm -rf "$work" "$cert"' EXIT; fi
cp "$root/tests/fixtures/tls/server.pem" "$cert"
chgrp "$acct" "$cert" && chmod 640 "$cert"
printf '\nTLS_CERTFILE=%s\n' "$cert" >> imapd-ssl
mem=50000000 # softlimit -m of every chain: /bin/true needs ~3,000,000

if [ $quick = 1 ]; then
  a_runs=3 a_warm=1 conf_sizes=(10 100) launch_sizes=(10 100) budget=0.3 maxruns=3
else
  a_runs=${BENCH_RUNS:-300} a_warm=30 conf_sizes=(10 100 1000 10000 100000)
  launch_sizes=(10 100 1000 10000) budget=${BENCH_BUDGET:-6} maxruns=300
fi

# A run file for courier-run: the Debian layout, the server replaced by
# /bin/true (the launch appends tcpserver's host, port and the login chain as
# arguments; /bin/true ignores them). No wait for authdaemond: the launch is
# measured with or without a daemon on the machine.
runfile() { # runfile FILE ENVDIR CONFIG...
  local f=$1 e=$2; shift 2
  cat > "$f" <<EOR
layout=debian
config="$*"
envdir=$e
account=$acct
softlimit="-m $mem"
server=/bin/true
banner=no
wait_authdaemond=no
EOR
}
# The classic run script: the 2004 recipe's sed/awk conf2env, then the chain.
classic() { # classic FILE ENVDIR CONFIG...
  local f=$1 e=$2; shift 2
  cat > "$f" <<EOR
#!/bin/sh
exec 2>&1
cat $* | $root/bench/classic-conf2env $e
exec envuidgid $acct envdir $e softlimit -m $mem /bin/true
EOR
}

# --- (a) side by side on the Debian config -------------------------------------
runfile run ./env ./imapd ./imapd-ssl
runfile run-rw ./env-rw ./imapd ./imapd-ssl
runfile run-computed ./env-computed ./imapd ./imapd-ssl
classic classic ./env-classic ./imapd ./imapd-ssl
"$bin" ./run >/dev/null 2>&1 # writes ./env; the measured launches find it unchanged
"$bin" ./run-rw >/dev/null 2>&1
"$bin" ./run-computed >/dev/null 2>&1
sh ./classic >/dev/null
say "(a) side by side: one hyperfine run, $a_runs runs each after $a_warm warmup runs"
names=(); cmds=(); preps=()
row() { names+=("$1"); cmds+=("$2"); preps+=("${3:-/bin/true}"); }
row '/bin/true' '/bin/true'
row 'C launcher floor (execv /bin/true)' './floor /bin/true'
row "chpst -U $acct -e ./env -m $mem" "chpst -U $acct -e ./env -m $mem /bin/true"
row "daemontools: envuidgid envdir softlimit" "envuidgid $acct envdir ./env softlimit -m $mem /bin/true"
row "s6: s6-envuidgid s6-envdir s6-softlimit" "s6-envuidgid $acct s6-envdir ./env s6-softlimit -m $mem /bin/true"
row 'classic script (sed/awk conf2env + daemontools chain)' 'sh ./classic'
# A supervised restart: the plan the previous start kept is used
# (src/keep.rs; the first warmup run keeps it).
row 'courier-run, envdir unchanged (kept plan)' "$bin ./run"
# The plan computed: the first start after a change (then kept).
row 'courier-run, envdir unchanged, plan computed and kept' "$bin ./run-computed" 'rm -f ./.run-computed.plan'
row 'courier-run, envdir rewritten' "$bin ./run-rw" 'sh ./perturb ./env-rw'
row 'courier-run --dry-run' "$bin ./run --dry-run"
args=()
for i in "${!cmds[@]}"; do args+=(--command-name "${names[$i]}" "${cmds[$i]}"); done
for p in "${preps[@]}"; do args+=(--prepare "$p"); done
hyperfine -N --style basic --warmup $a_warm --runs $a_runs --export-json side.json "${args[@]}" >&2

# --- (c) where a launch's time goes ----------------------------------------------
# The same launch built up one setting at a time, in one hyperfine run: each
# row adds one step to the one above it, so the differences are the steps'
# costs.
stage() { # stage FILE CONFIG ACCOUNT SOFTLIMIT ACCESS ENVDIR
  cat > "$1" <<EOR
layout=debian
config="$2"
account=$3
softlimit="$4"
access=$5
envdir=$6
rules=
server=/bin/true
banner=no
wait_authdaemond=no
EOR
}
stage stage0 "" "" "" "" ""
stage stage1 "./imapd ./imapd-ssl" "" "" "" ""
stage stage2 "./imapd ./imapd-ssl" "$acct" "" "" ""
stage stage3 "./imapd ./imapd-ssl" "$acct" "-m $mem" "" ""
# access: unset (the config's IMAPACCESSFILE, as in (a)); rules= empty.
stage stage4 "./imapd ./imapd-ssl" "$acct" "-m $mem" "" ""
sed -i '/^access=$/d; /^rules=$/d' stage4
stage stage5 "./imapd ./imapd-ssl" "$acct" "-m $mem" "" ./env-stage
sed -i '/^access=$/d; /^rules=$/d' stage5
for f in stage0 stage1 stage2 stage3 stage4 stage5; do "$bin" "./$f" >/dev/null 2>&1 ||
  { echo "bench/run.sh: $f does not launch: $("$bin" "./$f" 2>&1 | head -n 1)" >&2; exit 1; }; done
say "(c) cost by step: one hyperfine run, $a_runs runs each after $a_warm warmup runs"
# Each stage is computed (its kept plan removed before each run, so the
# row includes keeping it again); the last row is the next start, with the
# plan kept: what a supervised restart costs, as (a)'s first courier-run row.
keep_none=/bin/true
hyperfine -N --style basic --warmup $a_warm --runs $a_runs --export-json stages.json \
  --command-name '/bin/true' '/bin/true' --prepare $keep_none \
  --command-name 'C launcher floor (execv /bin/true)' './floor /bin/true' --prepare $keep_none \
  --command-name "chpst -U $acct -e ./env -m $mem" "chpst -U $acct -e ./env -m $mem /bin/true" --prepare $keep_none \
  --command-name 'courier-run-main --version (the main program'"'"'s start-up, no launch)' "$main --version" --prepare $keep_none \
  --command-name 'courier-run --version (the launcher, which execs the main program)' "$bin --version" --prepare $keep_none \
  --command-name 'launch: no config, account, softlimit, access list or envdir' "$bin ./stage0" --prepare 'rm -f ./.stage0.plan' \
  --command-name '+ the config files (read, parsed, the rc variables)' "$bin ./stage1" --prepare 'rm -f ./.stage1.plan' \
  --command-name "+ account=$acct (getpwnam; and the rc's TLS cache reset, which needs the account)" "$bin ./stage2" --prepare 'rm -f ./.stage2.plan' \
  --command-name "+ softlimit -m $mem" "$bin ./stage3" --prepare 'rm -f ./.stage3.plan' \
  --command-name '+ the access list (IMAPACCESSFILE, its cdb up to date)' "$bin ./stage4" --prepare 'rm -f ./.stage4.plan' \
  --command-name '+ envdir, unchanged (the full launch computed, as (a)'"'"'s "plan computed")' "$bin ./stage5" --prepare 'rm -f ./.stage5.plan' \
  --command-name '+ the plan kept by the start before (a supervised restart, as (a))' "$bin ./stage5" --prepare $keep_none >&2

# --- (b) scaling -----------------------------------------------------------------
# cells.tsv: case, variables, result (a hyperfine JSON, or "skip:why"), peak RSS KiB
: > cells.tsv
rss() { # rss RUNS PREPARE COMMAND...: peak RSS in KiB (GNU time %M), max of RUNS runs
  local m=0 v n=$1 prep=$2; shift 2
  for _ in $(seq "$n"); do
    [ "$prep" = - ] || $prep
    /usr/bin/time -f %M -o rss.txt "$@" >/dev/null 2>&1 || true
    v=$(tail -n 1 rss.txt); [ "$v" -gt "$m" ] && m=$v
  done
  echo "$m"
}
declare -A last # case -> seconds (min) of its previous size
skipped() { # skipped CASE: true when the previous size x10 exceeds BENCH_CAP
  [ $quick = 0 ] && awk -v p="${last[$1]:-0}" -v c="$cap" 'BEGIN { exit !(p * 10 > c) }'
}
min_of() { $py -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["min"])' "$1"; }
cell() { # cell CASE N PREPARE COMMAND...
  local c=$1 n=$2 prep=$3; shift 3
  local j=cell-$c-$n.json t runs
  if skipped "$c"; then
    printf '%s\t%s\tskip:>%ss predicted\t\n' "$c" "$n" "$cap" >> cells.tsv
    say "  $c $n: skipped (the previous size took ${last[$c]}s; x10 > BENCH_CAP=${cap}s)"
    last[$c]=1e9
    return
  fi
  local pargs=(); [ "$prep" = - ] || pargs=(--prepare "$prep")
  if [ $quick = 1 ]; then runs=2; else
    # one run first, to size the real run to the budget
    hyperfine -N --style none --runs 1 "${pargs[@]}" --export-json "$j" "$*" >/dev/null 2>&1 ||
      { printf '%s\t%s\tskip:failed\t\n' "$c" "$n" >> cells.tsv; say "  $c $n: FAILED: $*"; return 1; }
    t=$(min_of "$j")
    runs=$(awk -v t="$t" -v b="$budget" -v m="$maxruns" -v c="$cap" \
      'BEGIN { r = int(b / t); if (r > m) r = m; if (t > c || r < 2) r = 1; print r }')
  fi
  if [ "$runs" -ge 2 ]; then
    local warm=$(( runs >= 20 ? 3 : 0 ))
    hyperfine -N --style none --warmup $warm --runs "$runs" "${pargs[@]}" --export-json "$j" "$*" >/dev/null 2>&1 ||
      { printf '%s\t%s\tskip:failed\t\n' "$c" "$n" >> cells.tsv; say "  $c $n: FAILED: $*"; return 1; }
    t=$(min_of "$j")
  fi
  last[$c]=$t
  local r; r=$(rss "$(awk -v t="$t" 'BEGIN { print (t < 0.5) ? 3 : 1 }')" "$prep" "$@")
  printf '%s\t%s\t%s\t%s\n' "$c" "$n" "$j" "$r" >> cells.tsv
  say "  $c $n: min $(awk -v t="$t" 'BEGIN { printf "%.3f ms", t * 1000 }'), $runs runs, peak RSS $r KiB"
}
say "(b) scaling: one hyperfine run per cell (runs to fill ~${budget}s, at most $maxruns), BENCH_CAP=${cap}s"
for n in "${conf_sizes[@]}"; do
  "$root/bench/gen-config" "$n" > "conf$n"
  if ! skipped conf2env-unchanged || ! skipped conf2env-rewrite; then
    say " $n variables: writing the envdirs (not timed)"
    "$bin" conf2env "./c2e$n" "./conf$n"
  fi
  cell conf2env-unchanged "$n" - "$bin" conf2env "./c2e$n" "./conf$n"
  cell conf2env-rewrite "$n" "sh ./perturb ./c2e$n" "$bin" conf2env "./c2e$n" "./conf$n"
  case " ${launch_sizes[*]} " in *" $n "*) ;; *) continue ;; esac
  runfile "run$n" "./env$n" "./conf$n"
  classic "classic$n" "./envc$n" "./conf$n"
  "$bin" "./run$n" >/dev/null 2>&1
  cell launch-unchanged "$n" - "$bin" "./run$n"
  cell dry-run "$n" - "$bin" "./run$n" --dry-run
  cell chpst-e "$n" - chpst -U "$acct" -e "./env$n" -m $mem /bin/true
  cell classic "$n" - sh "./classic$n"
done

# --- report ----------------------------------------------------------------------
{
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); courier-run $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?') (${bin#"$root"/})"
  echo "- machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "- work dir on $(df -T "$work" | awk 'NR == 2 { print $2 }') ($base); $(hyperfine --version); account $acct; softlimit -m $mem; final program /bin/true"
  [ $quick = 1 ] && echo "- **--quick smoke run: a few runs per case, timings not meaningful**"
  true
} > meta.md
$py "$root/bench/report.py" "$work" "$out" "$quick"
say "wrote $out/results.md and $out/scaling.png"
