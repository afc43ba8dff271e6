#!/bin/bash
# Build variants of courier-run side by side: the release as shipped, and
# one variant per start-up decision with that decision undone (the two
# programs: the main program starting alone, and the launcher dynamic; the
# kept plan; std's runtime start-up; libgcc_s.so; glibc malloc for every
# block, or for blocks over 256 bytes; memchr's run-time CPU detection;
# SipHash with random keys; RELA relocations instead of DT_RELR; lld's
# order of the functions instead of the launch's), plus what was measured
# and not taken (static glibc for the main program too, non-PIE with lazy
# binding); then one hyperfine run of all of them on the Debian config,
# envdir unchanged, final program /bin/true, with /bin/true, the C floor
# and chpst for scale.
#
#   bash bench/variants.sh            # ~15-20 min on 2 cores (builds 12 variants)
#   bash bench/variants.sh --quick    # 2 variants, a few runs: checks the script
#
# Variants are built from copies of the work tree in the work dir (sources
# edited there by sed), with RUSTFLAGS for the link variants, so the tree is
# not touched; each variant's two programs are copied side by side into
# WORK/vN/. Prints a Markdown table (also WORK/variants.md) and the NSS
# check of every static variant (the courier user, and an unknown account,
# which glibc looks up past "files" in nsswitch.conf).
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

# One copy of the sources per source variant.
mkdir "$work/src-release"
(cd "$root" && git ls-files -co --exclude-standard -z src Cargo.toml Cargo.lock build.rs link .cargo 2>/dev/null |
  xargs -0 cp --parents -t "$work/src-release")
for v in stdmain libgcc_s malloc small kept memchr sip rela order; do cp -r "$work/src-release" "$work/src-$v"; done
# std's runtime start-up: Rust's own main in the launcher (the allocator kept).
cat > "$work/src-stdmain/src/launcher.rs" <<'EOF2'
#[global_allocator]
static ALLOC: courier_run::arena::Arena<{ 1 << 20 }, { 1 << 20 }> = courier_run::arena::Arena::new();
fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(runfile) = args.get(1..).and_then(courier_run::keep::shebang_runfile)
        && let Some(r) = courier_run::keep::launch(runfile)
    {
        std::process::exit(courier_run::error::fatal(r.map(|n| match n {})));
    }
    std::process::exit(courier_run::programs::exec_main(&args))
}
EOF2
# libgcc_s.so.1 loaded at start, as std links it: build.rs finds no
# libgcc_eh.a (cc prints a name it does not find as given, not absolute),
# and so links the launcher dynamic too (its static link needs libgcc_eh).
sed -i 's/-print-file-name=libgcc_eh.a/-print-file-name=no-such-libgcc_eh.a/' "$work/src-libgcc_s/build.rs"
grep -q no-such-libgcc_eh "$work/src-libgcc_s/build.rs" || { echo "variants.sh: the libgcc_s edit no longer applies to build.rs" >&2; exit 1; }
# glibc malloc for every block: no global allocator in the launcher.
sed -i '/#\[global_allocator\]/,/;$/d' "$work/src-malloc/src/launcher.rs"
# glibc malloc for blocks over 256 bytes (the main program's arena).
sed -i 's/Arena<{ 1 << 20 }, { 1 << 20 }>/Arena<{ 1 << 20 }>/' "$work/src-small/src/launcher.rs"
# Every start computes its plan: no kept plan used or written.
sed -i 's/&& let Some(r) = courier_run::keep::launch(runfile)/\&\& let Some(r) = None::<anyhow::Result<std::convert::Infallible>>/' "$work/src-kept/src/launcher.rs"
sed -i 's/&& let Some(r) = crate::keep::launch(runfile)/\&\& let Some(r) = None::<anyhow::Result<std::convert::Infallible>>/' "$work/src-kept/src/cli.rs"
sed -i 's/crate::keep::store(plan, runfile, started);/let _ = (runfile, started);/' "$work/src-kept/src/launch.rs"
grep -q 'None::<anyhow::Result' "$work/src-kept/src/cli.rs" && grep -q 'None::<anyhow::Result' "$work/src-kept/src/launcher.rs" && ! grep -q 'keep::store' "$work/src-kept/src/launch.rs" ||
  { echo "variants.sh: the kept-plan edit no longer applies to src/launcher.rs, src/cli.rs, src/launch.rs" >&2; exit 1; }
# memchr picks its routine at the first call (CPUID through std_detect).
sed -i 's/cfg(target_arch = "x86_64")/cfg(any())/g; s/cfg(not(target_arch = "x86_64"))/cfg(all())/g' "$work/src-memchr/src/bytes.rs"
# std's HashMap hasher: SipHash keyed by getrandom.
sed -i 's/HashMap<K, V, BuildHasherDefault<Fnv>>;/HashMap<K, V, std::hash::RandomState>;/' "$work/src-sip/src/hash.rs"
# RELA relocations: no -z pack-relative-relocs.
sed -i '/rustc-link-arg-bins=-Wl,-z,pack-relative-relocs/d' "$work/src-rela/build.rs"
# lld's own order of the functions: no link/launch.order.
rm "$work/src-order/link/launch.order"
grep -q 'cfg(all())' "$work/src-memchr/src/bytes.rs" || { echo "variants.sh: the memchr edit no longer applies to src/bytes.rs" >&2; exit 1; }
grep -q 'RandomState' "$work/src-sip/src/hash.rs" || { echo "variants.sh: the SipHash edit no longer applies to src/hash.rs" >&2; exit 1; }
grep -q 'rustc-link-arg-bins=-Wl,-z,pack-relative-relocs' "$work/src-rela/build.rs" && { echo "variants.sh: the RELR edit no longer applies to build.rs" >&2; exit 1; }
grep -q global_allocator "$work/src-malloc/src/launcher.rs" && { echo "variants.sh: the malloc edit no longer applies to src/launcher.rs" >&2; exit 1; }
grep -q '{ 1 << 20 }, { 1 << 20 }' "$work/src-small/src/launcher.rs" && { echo "variants.sh: the arena edit no longer applies to src/launcher.rs" >&2; exit 1; }

# name | source | RUSTFLAGS (or env:NAME=VALUE for the build's environment)
# "main:" runs variant 1's main program itself instead of its launcher.
variants=(
  "release (as shipped)|release|"
  "one program: the main program starts alone (no launcher)|main:|"
  "the launcher dynamic (COURIER_RUN_DYNAMIC_LAUNCHER=1)|release|env:COURIER_RUN_DYNAMIC_LAUNCHER=1"
  "no kept plan: every start computes (src/keep.rs undone)|kept|"
  "std's runtime start-up (fn main)|stdmain|"
  "libgcc_s.so.1 loaded, launcher dynamic (build.rs finds no libgcc_eh.a)|libgcc_s|"
  "glibc malloc for every block (no arena)|malloc|"
  "glibc malloc for blocks over 256 bytes (the main program's arena)|small|"
  "memchr's CPU detection (CPUID at the first search)|memchr|"
  "std HashMap: SipHash, random keys (getrandom)|sip|"
  "RELA relocations (no -z pack-relative-relocs)|rela|"
  "lld's function order (no link/launch.order)|order|"
  "static glibc for the main program too (+crt-static)|release|-Ctarget-feature=+crt-static"
  "non-PIE, lazy binding (relocation-model=static, -z lazy)|release|-Crelocation-model=static -Clink-arg=-Wl,-z,lazy"
)
[ $quick = 1 ] && variants=("${variants[0]}" "${variants[1]}" "${variants[3]}")

cc -O2 -o "$work/floor" "$root/bench/floor.c"
. "$root/bench/fixture.sh"
debian_fixture "$work" "$acct"
args=(--command-name '/bin/true' '/bin/true' --command-name 'C launcher floor' "$work/floor /bin/true"
      --command-name "chpst -U $acct -e ./env -m 50000000" "chpst -U $acct -e $work/env -m 50000000 /bin/true")
i=0
for v in "${variants[@]}"; do
  IFS='|' read -r name src flags <<< "$v"
  i=$((i + 1))
  if [ "$src" = main: ]; then
    args+=(--command-name "$name" "$work/v1/courier-run-main $work/run")
    printf '%s\t%s\t%s\n' "$i" "$name" "$(stat -c %s "$work/v1/courier-run-main")" >> "$work/sizes.tsv"
    continue
  fi
  say "building variant $i: $name"
  (
    cd "$work/src-$src"
    export CARGO_TARGET_DIR="$work/target-$i"
    case $flags in
      env:*) export "${flags#env:}" ;;
      ?*) export RUSTFLAGS="$flags" ;;
    esac
    # --target only where it is needed (a crt-static or non-PIE host build
    # cannot compile proc-macros): it changes the hashes in the symbol names, so
    # link/launch.order (names of a plain `cargo build`) would mostly not
    # apply, and the variants would not be the build that ships.
    tgt=()
    [[ $flags == *crt-static* || $flags == *relocation-model* ]] && tgt=(--target $target)
    cargo build --release -q "${tgt[@]}" 2> "$work/build-$i.log" ||
      { cat "$work/build-$i.log" >&2; exit 1; }
  )
  out=$work/target-$i/release
  [[ $flags == *crt-static* || $flags == *relocation-model* ]] && out=$work/target-$i/$target/release
  mkdir "$work/v$i"
  cp "$out/courier-run" "$out/courier-run-main" "$work/v$i/"
  b=$work/v$i/courier-run
  printf '%s\t%s\t%s\n' "$i" "$name" "$(stat -c %s "$b")" >> "$work/sizes.tsv"
  say "  launcher: $(file -b "$b" | cut -d, -f1-5)"
  if [[ $flags == *crt-static* ]]; then
    say "  main program: $(file -b "$work/v$i/courier-run-main" | cut -d, -f1-5)"
    say "  NSS check (nsswitch.conf passwd: $(sed -n 's/^passwd:[[:space:]]*//p' /etc/nsswitch.conf)): --dry-run with a known and an unknown account"
    rc=0; (cd "$work" && "$b" ./run --set account=$acct --dry-run >"$work/nss.out" 2>&1) || rc=$?
    say "    account=$acct: exit $rc: $(grep -m 1 '^envuidgid' "$work/nss.out" || head -n 1 "$work/nss.out")"
    rc=0; (cd "$work" && "$b" ./run --set account=no-such-account-xyz --dry-run >"$work/nss.out" 2>&1) || rc=$?
    say "    account=no-such-account-xyz: exit $rc$([ $rc -gt 128 ] && echo " (killed by signal $((rc - 128)))"): $(head -n 1 "$work/nss.out")"
  fi
  args+=(--command-name "$name" "$b $work/run")
done
cd "$work"
# Writes ./env, then (past the kept plan's racy window) keeps the plan
# every variant with a kept plan uses: its key names v1's main program.
./v1/courier-run ./run 2>/dev/null
sleep 2.2
./v1/courier-run ./run 2>/dev/null
test -f .run.plan || { echo "variants.sh: no plan was kept" >&2; exit 1; }
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
print("| variant | program started | min | median | min vs release |")
print("|---|---:|---:|---:|---:|")
for r in res:
    size = f"{sizes[r['command']] / 1024:,.0f} KiB" if r["command"] in sizes else ""
    d = (r["min"] - base["min"]) * 1e3
    print(f"| {r['command']} | {size} | {r['min'] * 1e3:.3f} ms | {r['median'] * 1e3:.3f} ms | {d:+.3f} ms |")
EOF
