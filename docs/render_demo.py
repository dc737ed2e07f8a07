"""Render what the Grafana dashboards show for the demo into one PNG, without Grafana.

Runs the key panels' own queries (taken from ``fakeai_metrics.artifacts.dashboards.generate()``, so the
picture shows exactly what the dashboards ask) through a Prometheus that scrapes
``fakeai-metrics demo``, and draws them with matplotlib in a grid of small charts:

    python docs/render_demo.py                      # starts demo + Prometheus, ~3 minutes
    python docs/render_demo.py --prometheus http://127.0.0.1:9090 --minutes 15   # an existing one

Without ``--prometheus`` it uses the integration tests' stack (tests/livestack.py: the demo at
40 requests/s with seed 7, a Prometheus with the bundled rules, 1 s scrapes) and needs the
``prometheus`` binary. Needs matplotlib (pip install matplotlib).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fakeai_metrics.artifacts import dashboards  # noqa: E402

#: (dashboard file, panel title) of the charts, in reading order.
PANELS: tuple[tuple[str, str], ...] = (
    ("fakeai-overview.json", "Request rate by endpoint and model"),
    ("fakeai-overview.json", "Time to first token"),
    ("fakeai-overview.json", "Inter-token latency"),
    ("fakeai-overview.json", "Output tokens/s by model"),
    ("fakeai-overview.json", "Active streams by model"),
    ("fakeai-cost.json", "Spend rate per API key"),
    ("fakeai-cost.json", "Budget used vs limit"),
    ("fakeai-slo.json", "Burn rate per window"),
    ("fakeai-slo.json", "Errors by type and status"),
)


def _formatter(unit: str) -> Callable[[float, Any], str]:
    """A y-axis label function for a Grafana unit id."""
    if unit == "s":
        return lambda v, _: f"{v * 1000:g} ms" if abs(v) < 1 else f"{v:g} s"
    if unit == "percentunit":
        return lambda v, _: f"{v * 100:g}%"
    if unit == "currencyUSD":
        return lambda v, _: f"${v:g}"
    if unit.startswith("suffix:"):
        suffix = unit.split(":", 1)[1].strip()
        return lambda v, _: f"{v:g} {suffix}"
    if unit == "reqps":
        return lambda v, _: f"{v:g}/s"
    return lambda v, _: f"{v:g}"


def _legend(template: str, labels: dict[str, str]) -> str:
    text = template
    for key, value in labels.items():
        text = text.replace(f"{{{{{key}}}}}", value)
    return text or ",".join(f"{k}={v}" for k, v in labels.items())


def render(query_range: Callable[[str, float, float, float], list[dict[str, Any]]], job: str,
           start: float, end: float, out: Path, rate_interval: str) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    generated = dashboards.generate()
    values = {"job": job, "model": dashboards.MODEL_ALL_VALUE, "__rate_interval": rate_interval,
              "__range": f"{int(end - start)}s"}
    step = max(1.0, (end - start) / 240)
    fig, axes = plt.subplots(3, 3, figsize=(15, 9.5), dpi=80)
    empty = 0
    for ax, (file, title) in zip(axes.flat, PANELS):
        panel = next(p for p in generated[file]["panels"] if p["title"] == title)
        unit = panel["fieldConfig"]["defaults"]["unit"]
        dashed = {o["matcher"]["options"] for o in panel["fieldConfig"].get("overrides", [])
                  if o["matcher"]["id"] == "byFrameRefID"}
        lines = 0
        for target in panel["targets"]:
            result = query_range(dashboards.interpolate(target["expr"], values), start, end, step)
            for series in sorted(result, key=lambda s: sorted(s["metric"].items())):
                xs = [datetime.fromtimestamp(float(t)) for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                ax.plot(xs, ys, linewidth=1.2,
                        linestyle="--" if target["refId"] in dashed else "-",
                        label=_legend(target.get("legendFormat", ""), series["metric"]))
                lines += 1
        steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
        style = panel["fieldConfig"]["defaults"].get("custom", {}).get("thresholdsStyle", {})
        if style.get("mode", "off") != "off":
            for s in steps:
                if s["value"] is not None:
                    ax.axhline(s["value"], color="tab:red", linestyle=":", linewidth=0.8)
        ax.set_title(title, fontsize=10, loc="left")
        ax.yaxis.set_major_formatter(FuncFormatter(_formatter(unit)))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(matplotlib.dates.DateFormatter(
            "%H:%M:%S" if end - start < 900 else "%H:%M"))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        if title == "Burn rate per window":
            ax.set_yscale("symlog", linthresh=1)
        if lines:
            ax.legend(fontsize=6, loc="upper left", ncol=2, framealpha=0.6)
        else:
            empty += 1
            ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
    fig.suptitle(f"fakeai-metrics demo as the Grafana dashboards' queries see it "
                 f"({int(end - start)} s, $__rate_interval={rate_interval})", fontsize=12)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    _shrink(out)
    return empty


def _shrink(path: Path) -> None:
    """Rewrite the PNG with a 256-colour palette: a line chart loses nothing, the file ~3x."""
    from PIL import Image  # matplotlib depends on Pillow

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", help="URL of a Prometheus that scrapes the demo "
                        "(default: start the demo and a Prometheus here)")
    parser.add_argument("--job", default="fakeai", help="job of the demo target (default fakeai)")
    parser.add_argument("--minutes", type=float, default=3.0,
                        help="minutes of data to draw (default 3; waits that long when it "
                             "starts the stack itself)")
    parser.add_argument("--rate-interval", default="20s",
                        help="what $__rate_interval stands for (default 20s)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboards-demo.png")
    args = parser.parse_args(argv)

    if args.prometheus:
        sys.path.insert(0, str(ROOT / "tests"))
        import livestack

        class _Remote(livestack.LiveStack):
            def __init__(self, url: str) -> None:  # only the HTTP helpers are used
                self.prometheus_url = url.rstrip("/")

        remote = _Remote(args.prometheus)
        end = time.time()
        empty = render(remote.query_range, args.job, end - args.minutes * 60, end, args.out,
                       args.rate_interval)
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        import livestack

        with livestack.live_stack() as stack:
            print(f"demo and Prometheus up; collecting {args.minutes:g} minutes of data ...",
                  file=sys.stderr)
            start = time.time()
            deadline = time.monotonic() + args.minutes * 60
            while time.monotonic() < deadline:
                stack.assert_running()
                time.sleep(2)
            empty = render(stack.query_range, stack.job, start, time.time(), args.out,
                           args.rate_interval)
    print(args.out)
    return 1 if empty else 0


if __name__ == "__main__":
    sys.exit(main())
