#!/usr/bin/env python3
"""Renders the panels of a Grafana dashboard JSON from a live Prometheus (query_range API) into one PNG.

Grafana itself is not needed: every panel's PromQL runs against Prometheus as Grafana would run it
($__rate_interval substituted), and each panel becomes a matplotlib plot with the panel's title,
unit and legend format. Used by `npm run obs:smoke -- --render docs/dashboard.png`.

    python3 scripts/render-dashboard.py --prometheus http://127.0.0.1:9090 \
        --dashboard grafana/dashboards/recommendation-service.json --start T0 --end T1 --out out.png

Needs matplotlib (pip install matplotlib).
"""
import argparse
import json
import math
import re
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

UNITS = {
    "s": (1000.0, "ms"),
    "percentunit": (100.0, "%"),
    "bytes": (1.0 / (1024 * 1024), "MiB"),
    "reqps": (1.0, "req/s"),
    "ops": (1.0, "/s"),
}


def query_range(base, expr, start, end, step):
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}", timeout=30) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"query failed: {expr}: {body}")
    return body["data"]["result"]


def legend(fmt, labels):
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt or "")
    return text or json.dumps(labels)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--dashboard", required=True)
    parser.add_argument("--start", type=float, required=True)
    parser.add_argument("--end", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--rate-interval", default="15s")
    parser.add_argument("--columns", type=int, default=4)
    args = parser.parse_args()

    with open(args.dashboard, encoding="utf-8") as f:
        dashboard = json.load(f)
    panels = [p for p in dashboard["panels"] if p.get("type") != "row" and p.get("targets")]
    step = max(1.0, (args.end - args.start) / 240)
    rows = math.ceil(len(panels) / args.columns)
    fig, axes = plt.subplots(rows, args.columns, figsize=(5.2 * args.columns, 2.9 * rows), squeeze=False)
    fig.suptitle(
        f"{dashboard['title']}: every panel of grafana/dashboards/{args.dashboard.split('/')[-1]}, "
        f"rendered from Prometheus ({args.end - args.start:.0f} s of traffic)",
        fontsize=13,
    )
    for ax in axes.flat[len(panels):]:
        ax.axis("off")

    for ax, panel in zip(axes.flat, panels):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "none")
        scale, unit_label = UNITS.get(unit, (1.0, ""))
        ax.set_title(panel["title"], fontsize=10, loc="left")
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        plotted = 0
        last = None
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", args.rate_interval)
            for series in query_range(args.prometheus, expr, args.start, args.end, step):
                points = [(float(t) - args.start, float(v) * scale) for t, v in series["values"] if v not in ("NaN", "+Inf", "-Inf")]
                if not points:
                    continue
                xs, ys = zip(*points)
                ax.plot(xs, ys, linewidth=1, label=legend(target.get("legendFormat"), series["metric"]))
                plotted += 1
                last = ys[-1]
        if panel["type"] == "stat" and last is not None:
            ax.text(0.98, 0.9, f"{last:.3g} {unit_label}", transform=ax.transAxes, ha="right", va="top", fontsize=16, weight="bold")
        if plotted == 0:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")
        elif plotted <= 8 and panel["type"] != "stat":
            ax.legend(fontsize=6, loc="upper left")
        ax.set_ylabel(unit_label, fontsize=8)
        ax.set_xlabel("seconds", fontsize=7)

    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out} ({len(panels)} panels)")


if __name__ == "__main__":
    main()
