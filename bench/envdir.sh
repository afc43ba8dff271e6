#!/bin/sh
# conf2env at N variables: unchanged envdir and rewrite, time (hyperfine)
# and peak RSS (/usr/bin/time -v). Usage: bench/envdir.sh BINARY WORKDIR [N...]
# Rewrite runs alternate two configs (hyperfine --prepare writes the other
# one first, outside the measured time).
set -eu
bin=$1; work=$2; shift 2
[ $# -gt 0 ] || set -- 50 1000 10000 100000
mkdir -p "$work"
for n in "$@"; do
	d=$work/$n; rm -rf "$d"; mkdir -p "$d"
	awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "V%d=value-%d\n", i, i }' >"$d/a"
	awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "V%d=other-%d\n", i, i }' >"$d/b"
	"$bin" conf2env "$d/env" "$d/a"
	runs=20; [ "$n" -ge 10000 ] && runs=5; [ "$n" -ge 100000 ] && runs=${BIG_RUNS:-3}
	rss=$( { /usr/bin/time -v "$bin" conf2env "$d/env" "$d/a"; } 2>&1 | awk '/Maximum resident/ { print $6 }')
	hyperfine -N -w 1 -r "$runs" --export-json "$d/unchanged.json" "$bin conf2env $d/env $d/a" >/dev/null 2>&1
	"$bin" conf2env "$d/env" "$d/b"
	rss_w=$( { /usr/bin/time -v "$bin" conf2env "$d/env" "$d/a"; } 2>&1 | awk '/Maximum resident/ { print $6 }')
	hyperfine -N -r "$runs" --prepare "$bin conf2env $d/env $d/b" --export-json "$d/rewrite.json" "$bin conf2env $d/env $d/a" >/dev/null 2>&1
	u=$(jq -r '.results[0] | "\(.min*1000|.*100|round/100) ms min, \(.median*1000|.*100|round/100) ms median"' "$d/unchanged.json")
	w=$(jq -r '.results[0] | "\(.min*1000|.*100|round/100) ms min, \(.median*1000|.*100|round/100) ms median"' "$d/rewrite.json")
	echo "| $n | $u | ${rss} KiB | $w | ${rss_w} KiB |"
	rm -rf "$d"
done
