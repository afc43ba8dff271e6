#!/usr/bin/python3
"""bench/report.py WORK OUT QUICK: the Markdown tables and the PNG chart of
bench/run.sh, from the hyperfine JSON files it left in WORK."""

import json
import os
import sys

work, out, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"


def ms(s):
    """Seconds as milliseconds (or seconds past 10 s), 3 significant-ish digits."""
    if s >= 10:
        return f"{s:.1f} s"
    v = s * 1000
    if v >= 100:
        return f"{v:.0f} ms"
    if v >= 10:
        return f"{v:.1f} ms"
    return f"{v:.2f} ms"


side = json.load(open(os.path.join(work, "side.json")))["results"]
chpst = next(r for r in side if r["command"].startswith("chpst"))
true = side[0]
lines = []
lines.append("### (a) Side by side: Debian 12 imapd + imapd-ssl, final program /bin/true")
lines.append("")
runs = len(side[0]["times"])
lines.append(f"One `hyperfine -N` run, {runs} runs per row.")
lines.append("")
lines.append("| launcher | min | median | min / chpst | median / chpst | min / /bin/true |")
lines.append("|---|---:|---:|---:|---:|---:|")
for r in side:
    lines.append(
        f"| {r['command']} | {ms(r['min'])} | {ms(r['median'])} "
        f"| {r['min'] / chpst['min']:.2f}× | {r['median'] / chpst['median']:.2f}× "
        f"| {r['min'] / true['min']:.2f}× |"
    )
lines.append("")

cases = [
    ("conf2env-unchanged", "conf2env, unchanged"),
    ("conf2env-rewrite", "conf2env, rewrite"),
    ("launch-unchanged", "launch, unchanged"),
    ("dry-run", "--dry-run"),
    ("chpst-e", "chpst -e"),
    ("classic", "classic script"),
]
cells = {}
sizes = []
for line in open(os.path.join(work, "cells.tsv")):
    case, n, res, rss = line.rstrip("\n").split("\t")
    n = int(n)
    if n not in sizes:
        sizes.append(n)
    if res.startswith("skip:"):
        cells[case, n] = (None, res[5:], None)
        continue
    r = json.load(open(os.path.join(work, res)))["results"][0]
    cells[case, n] = (r, len(r["times"]), int(rss) if rss else None)

lines.append("### (b) Scaling by number of variables: min (median)")
lines.append("")
lines.append(
    "One `hyperfine -N` run per cell, as many runs as fit in a few seconds "
    "(the count is in brackets when below 10). Launch, `--dry-run` and "
    "`chpst -e` stop at 10,000: past that the environment no longer fits the "
    "kernel's argument space."
)
lines.append("")


def table(fmt):
    lines.append("| variables | " + " | ".join(label for _, label in cases) + " |")
    lines.append("|---:|" + "---:|" * len(cases))
    for n in sizes:
        row = [f"{n:,}"]
        for case, _ in cases:
            c = cells.get((case, n))
            if c is None:
                row.append("")
            elif c[0] is None:
                row.append(f"skipped ({c[1]})")
            else:
                row.append(fmt(*c))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")


def timing(r, k, rss):
    txt = f"{ms(r['min'])} ({ms(r['median'])})"
    if k < 10:
        txt += f" [{k}]"
    return txt


table(timing)
lines.append("Peak RSS, KiB (GNU time's %M, the largest of 1 to 3 runs):")
lines.append("")
table(lambda r, k, rss: f"{rss:,}" if rss is not None else "?")
c_lines = []
stages_file = os.path.join(work, "stages.json")
if os.path.exists(stages_file):
    st = json.load(open(stages_file))["results"]
    st_chpst = next(r for r in st if r["command"].startswith("chpst"))
    c_lines.append("### (c) Where a launch's time goes: the launch of (a) built up one step at a time")
    c_lines.append("")
    c_lines.append(
        f"One `hyperfine -N` run, {len(st[0]['times'])} runs per row. A row starting with `+` "
        "adds one step to the row above; its step cost is the difference of the mins."
    )
    c_lines.append("")
    c_lines.append("| command | min | median | step (min) | min / chpst |")
    c_lines.append("|---|---:|---:|---:|---:|")
    prev = None
    for r in st:
        step = ""
        if r["command"].startswith("+") and prev is not None:
            step = f"{(r['min'] - prev['min']) * 1e6:+.0f} µs"
        c_lines.append(
            f"| {r['command']} | {ms(r['min'])} | {ms(r['median'])} | {step} "
            f"| {r['min'] / st_chpst['min']:.2f}× |"
        )
        prev = r
    c_lines.append("")

lines.append("![time against variables](scaling.png)")
lines.append("")
lines.extend(c_lines)
meta = open(os.path.join(work, "meta.md")).read().rstrip("\n")
doc = "## Launch benchmark (`bash bench/run.sh`)\n\n" + meta + "\n\n" + "\n".join(lines)
open(os.path.join(out, "results.md"), "w").write(doc)
print(doc)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

fig, ax = plt.subplots(figsize=(8, 6.2), dpi=110)
style = {
    "launch-unchanged": ("courier-run launch, envdir unchanged", "tab:blue", "-", "o"),
    "dry-run": ("courier-run --dry-run", "tab:cyan", "--", "o"),
    "conf2env-unchanged": ("courier-run conf2env, unchanged", "tab:green", "-", "s"),
    "conf2env-rewrite": ("courier-run conf2env, rewrite", "tab:olive", "--", "s"),
    "chpst-e": ("chpst -e (reads a ready envdir)", "tab:orange", "-", "^"),
    "classic": ("classic sed/awk script + daemontools", "tab:red", "-", "v"),
}
for case, (label, color, ls, mk) in style.items():
    pts = [(n, cells[case, n][0]["min"]) for n in sizes if cells.get((case, n), (None,))[0]]
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], ls, marker=mk, color=color, label=label)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("variables in the config (one envdir file each)")
ax.set_ylabel("time (min of the runs)")


def fmt_time(v, _pos):
    if v >= 1:
        return f"{v:g} s"
    if v >= 1e-3:
        return f"{v * 1e3:g} ms"
    return f"{v * 1e6:g} µs"


ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(fmt_time))
ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _p: f"{v:,.0f}"))
ax.set_title("courier-run launch cost against the number of variables" + (" (--quick)" if quick else ""))
ax.grid(True, which="major", alpha=0.4)
ax.grid(True, which="minor", alpha=0.12)
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=9, frameon=False)
fig.tight_layout()
fig.savefig(os.path.join(out, "scaling.png"))
