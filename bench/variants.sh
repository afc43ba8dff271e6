#!/bin/bash
# Build variants of courier-run side by side (issue 12, item 3): profile
# settings, static glibc, and main without Rust's runtime start-up; then one
# hyperfine run of all of them on the Debian config, envdir unchanged, final
# program /bin/true, with the C floor and chpst for scale.
#
#   bash bench/variants.sh            # ~10-15 min on 2 cores (builds 11 variants)
#   bash bench/variants.sh --quick    # 3 variants, a few runs: checks the script
#
# Variants are built from a copy of the work tree in the work dir, with
# CARGO_PROFILE_RELEASE_* and RUSTFLAGS, so Cargo.toml is not touched.
# Prints a Markdown table (also written to WORK/variants.md) and the NSS check
# of every static variant (the courier user, and an unknown account, which
# glibc looks up past "files" in nsswitch.conf).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
quick=0
[ "${1:-}" = --quick ] && quick=1
acct=${BENCH_ACCOUNT:-courierd}
id "$acct" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$acct"
base=${BENCH_DIR:-$( [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo /tmp )}
work=$(mktemp -d "$base/courier-run-variants.XXXXXX")
trap 'rm -rf "$work"' EXIT
say() { printf '== %s\n' "$*" >&2; }
target=x86_64-unknown-linux-gnu

# A copy of the sources; a second copy whose main skips Rust's runtime start-up
# (lang_start: the stdio poll, SIGPIPE ignore, /proc/self/maps read for the
# main thread's guard page, sigaltstack and the SIGSEGV/SIGBUS handlers).
mkdir "$work/src-std" "$work/src-nomain"
(cd "$root" && git ls-files -co --exclude-standard -z src Cargo.toml Cargo.lock build.rs 2>/dev/null |
  xargs -0 cp --parents -t "$work/src-std")
cp -r "$work/src-std/." "$work/src-nomain"
cat > "$work/src-nomain/src/main.rs" <<'EOF'
#![no_main]

/// C's main: std's runtime start-up is skipped; args still work (glibc hands
/// them to std through .init_array). process::exit flushes stdout.
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    // Keep std's behaviour for writes to a closed pipe: an error, not a signal.
    unsafe { nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN) };
    std::process::exit(courier_run::cli::main())
}
EOF

# std links libgcc_s.so for its unwinder; with panic=abort only backtraces use
# it. A libgcc_s.a (gcc's static libgcc_eh) found first makes -lgcc_s static:
# one shared library less to load, glibc (and so NSS) stays dynamic.
mkdir "$work/gcceh"
ln -s "$(cc -print-file-name=libgcc_eh.a)" "$work/gcceh/libgcc_s.a"

# name | source | env for cargo (profile vars, RUSTFLAGS)
variants=(
  "release (Cargo.toml: lto=fat, codegen-units=1, panic=abort, opt-level=3)|std|"
  "panic=unwind|std|CARGO_PROFILE_RELEASE_PANIC=unwind"
  "lto=off, codegen-units=16|std|CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16"
  "opt-level=2|std|CARGO_PROFILE_RELEASE_OPT_LEVEL=2"
  "opt-level=s|std|CARGO_PROFILE_RELEASE_OPT_LEVEL=s"
  "no runtime start-up (#![no_main])|nomain|"
  "static glibc (+crt-static, static-pie)|std|RUSTFLAGS=-Ctarget-feature=+crt-static"
  "static glibc, non-PIE (+crt-static, relocation-model=static)|std|RUSTFLAGS=-Ctarget-feature=+crt-static -Crelocation-model=static"
  "static glibc, non-PIE, no runtime start-up|nomain|RUSTFLAGS=-Ctarget-feature=+crt-static -Crelocation-model=static"
  "dynamic glibc, libgcc_s replaced by the static libgcc_eh|std|RUSTFLAGS=-Lnative=$work/gcceh"
  "dynamic glibc, static libgcc_eh, no runtime start-up|nomain|RUSTFLAGS=-Lnative=$work/gcceh"
)
[ $quick = 1 ] && variants=("${variants[0]}" "${variants[6]}" "${variants[10]}")

cc -O2 -o "$work/floor" "$root/bench/floor.c"
cp "$root/bench/fixtures/imapd" "$root/bench/fixtures/imapd-ssl" "$work/"
cat > "$work/run" <<EOR
layout=debian
config="./imapd ./imapd-ssl"
envdir=./env
account=$acct
softlimit="-m 50000000"
server=/bin/true
banner=no
EOR
args=(--command-name '/bin/true' '/bin/true' --command-name 'C launcher floor' "$work/floor /bin/true"
      --command-name "chpst -U $acct -e ./env -m 50000000" "chpst -U $acct -e $work/env -m 50000000 /bin/true")
i=0
for v in "${variants[@]}"; do
  IFS='|' read -r name src envs <<< "$v"
  i=$((i + 1))
  say "building variant $i: $name"
  # shellcheck disable=SC2086 # envs is a list of NAME=value words (RUSTFLAGS holds blanks: split by hand)
  (
    cd "$work/src-$src"
    export CARGO_TARGET_DIR="$work/target-$i"
    if [[ $envs == RUSTFLAGS=* ]]; then export RUSTFLAGS="${envs#RUSTFLAGS=}"; else for e in $envs; do export "${e?}"; done; fi
    cargo build --release -q --target $target --bin courier-run 2> "$work/build-$i.log" ||
      { cat "$work/build-$i.log" >&2; exit 1; }
  )
  b=$work/target-$i/$target/release/courier-run
  cp "$b" "$work/courier-run-$i"
  printf '%s\t%s\t%s\n' "$i" "$name" "$(stat -c %s "$b")" >> "$work/sizes.tsv"
  if grep -q 'statically linked applications' "$work/build-$i.log"; then
    say "  linker: $(grep -m 1 -o "Using '[a-z_]*' in statically linked.*" "$work/build-$i.log")"
  fi
  if [[ $envs == *crt-static* ]]; then
    say "  file: $(file -b "$b" | cut -d, -f1-5)"
    say "  NSS check (nsswitch.conf passwd: $(sed -n 's/^passwd:[[:space:]]*//p' /etc/nsswitch.conf)): --dry-run with a known and an unknown account"
    rc=0; (cd "$work" && "$b" ./run --set account=courier --dry-run >"$work/nss.out" 2>&1) || rc=$?
    say "    account=courier: exit $rc: $(grep -m 1 '^envuidgid' "$work/nss.out" || head -n 1 "$work/nss.out")"
    rc=0; (cd "$work" && "$b" ./run --set account=no-such-account-xyz --dry-run >"$work/nss.out" 2>&1) || rc=$?
    say "    account=no-such-account-xyz: exit $rc$([ $rc -gt 128 ] && echo " (killed by signal $((rc - 128)))"): $(head -n 1 "$work/nss.out")"
  fi
  args+=(--command-name "$name" "$work/courier-run-$i $work/run")
done
cd "$work"
./courier-run-1 ./run 2>/dev/null # writes ./env: every variant finds it unchanged
runs=$([ $quick = 1 ] && echo 3 || echo "${BENCH_RUNS:-500}")
warm=$([ $quick = 1 ] && echo 1 || echo 50)
say "one hyperfine run: $runs runs each after $warm warmup runs"
hyperfine -N --style basic --warmup "$warm" --runs "$runs" --export-json variants.json "${args[@]}" >&2
/usr/bin/python3 - "$work" <<'EOF' | tee "$work/variants.md"
import json, sys, os
w = sys.argv[1]
res = json.load(open(os.path.join(w, "variants.json")))["results"]
sizes = {}
for line in open(os.path.join(w, "sizes.tsv")):
    i, name, size = line.rstrip("\n").split("\t")
    sizes[name] = int(size)
base = next(r for r in res if r["command"].startswith("release"))
print("| variant | binary | min | median | min vs release |")
print("|---|---:|---:|---:|---:|")
for r in res:
    size = f"{sizes[r['command']] / 1024:,.0f} KiB" if r["command"] in sizes else ""
    d = (r["min"] - base["min"]) * 1e3
    print(f"| {r['command']} | {size} | {r['min'] * 1e3:.3f} ms | {r['median'] * 1e3:.3f} ms | {d:+.3f} ms |")
EOF
