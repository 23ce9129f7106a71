#!/usr/bin/env python3
"""Checks a `ctrps report` page as a browser rendered it (chromium --dump-dom).

  report_check.py DOM_FILE CHART_ID... -- RUN_DIR...

Fails (exit 1, saying what) unless: the page recorded no script error; every
CHART_ID was drawn (a non-empty plot area); and the charts hold exactly the
runs' metrics, derived here independently of the page's script: loss and
validation AUC/logloss against steps and time, throughput, the per-step
time split (per training and per worker), the compression trade-offs
against bytes and single-row latency (every compress_model line one point,
the uncompressed ones in their own dataset), UMEC's resource, dropped groups
and multipliers, and DeepLight's sparsity against steps.
"""
import html
import json
import math
import os
import re
import sys

PHASES = ["read", "pull", "compute", "allreduce", "push", "wait"]


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def pre(dom, element_id):
    m = re.search(r'<pre id="%s"[^>]*>(.*?)</pre>' % element_id, dom, re.S)
    if not m:
        fail("the page has no #%s element" % element_id)
    return json.loads(html.unescape(m.group(1)))


def close(a, b):
    return a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                      and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12))


def same_points(what, got, want):
    if len(got) != len(want):
        fail("%s: %d points drawn, the metrics have %d" % (what, len(got), len(want)))
    for i, (g, w) in enumerate(zip(got, want)):
        if not (close(g["x"], w[0]) and close(g["y"], w[1])):
            fail("%s: point %d is (%s, %s), the metrics say (%s, %s)" % (what, i, g["x"], g["y"], w[0], w[1]))


def read_run(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    with open(path) as f:
        events = [json.loads(line) for line in f if line.strip()]
    name = os.path.basename(os.path.normpath(os.path.abspath(run_dir)))
    return name, events


def segments(events):
    """Training segments: a new one wherever the step goes back (compress
    fine-tunes each stage from step 0)."""
    segs, last = [], None
    for e in events:
        if e.get("event") == "train" or (e.get("event") == "eval" and e.get("split") == "valid"):
            if last is None or e["step"] < last:
                segs.append({"train": [], "valid": []})
            last = e["step"]
            segs[-1]["train" if e["event"] == "train" else "valid"].append(e)
    return segs


def expected_lines(runs, kind, xk, yk):
    out = {}
    for name, events in runs:
        segs = segments(events)
        for i, seg in enumerate(segs):
            pts = [(e[xk], e[yk]) for e in seg[kind]
                   if isinstance(e.get(xk), (int, float)) and isinstance(e.get(yk), (int, float))]
            if not pts:
                continue
            label = name if len(segs) == 1 else name + (" (fine-tuning %d)" if any(
                e.get("event") == "compress_begin" for e in events) else " (part %d)") % (i + 1)
            out[label] = pts
    return out


def check_lines(rendered, chart, want):
    if chart not in rendered:
        if want:
            fail("chart %s was not drawn, though the metrics have %s" % (chart, sorted(want)))
        return
    got = {d["label"]: d["data"] for d in rendered[chart]["datasets"]}
    if sorted(got) != sorted(want):
        fail("chart %s has datasets %s, the metrics give %s" % (chart, sorted(got), sorted(want)))
    for label, pts in want.items():
        same_points("%s / %s" % (chart, label), got[label], pts)


def check_split(rendered, chart, bars):
    if chart not in rendered:
        if bars:
            fail("chart %s was not drawn, though the metrics have %d bars" % (chart, len(bars)))
        return
    r = rendered[chart]
    if r["labels"] != [b[0] for b in bars]:
        fail("chart %s has bars %s, the metrics give %s" % (chart, r["labels"], [b[0] for b in bars]))
    by_phase = {d["label"]: d["data"] for d in r["datasets"]}
    for k, p in enumerate(PHASES):
        for (label, values), got in zip(bars, by_phase.get(p, [])):
            if not close(got, values[k]):
                fail("chart %s, bar %s, %s: %s ms/step drawn, the metrics say %s" % (chart, label, p, got, values[k]))


def split_bars(runs, event, label):
    bars = []
    for name, events in runs:
        lines = [e for e in events if e.get("event") == event and e.get("steps", 0) > 0]
        for i, e in enumerate(lines):
            bars.append((label(name, e, i, len(lines)),
                         [1000.0 * e.get(p + "_s", 0) / e["steps"] for p in PHASES]))
    return bars


def check_tradeoff(rendered, runs, chart, x_of):
    models = [(name, e) for name, events in runs for e in events
              if e.get("event") == "compress_model" and x_of(e) is not None]
    if not models:
        return
    if chart not in rendered:
        fail("%s was not drawn, though the metrics have %d compress_model lines for it" % (chart, len(models)))
    got = {d["label"]: d["data"] for d in rendered[chart]["datasets"]}
    auc = lambda e: e["test_auc"] if isinstance(e.get("test_auc"), (int, float)) else e["valid_auc"]
    want = {"uncompressed": []}
    for name, e in models:
        want.setdefault("uncompressed" if e["model"] == "uncompressed" else name, []).append((x_of(e), auc(e)))
    if sorted(got) != sorted(want):
        fail("%s has datasets %s, the metrics give %s" % (chart, sorted(got), sorted(want)))
    for label, pts in want.items():
        same_points(chart + " / " + label, got[label], pts)


def step_series(runs, event, series_of):
    """Datasets "<run>: <suffix>" of (step, y) from per-step events, as the
    page's stepSeriesChart draws them."""
    out = {}
    for name, events in runs:
        lines = [e for e in events if e.get("event") == event and isinstance(e.get("step"), (int, float))]
        for suffix, y in series_of(lines):
            pts = [(e["step"], y(e)) for e in lines if isinstance(y(e), (int, float))]
            if pts:
                out["%s: %s" % (name, suffix)] = pts
    return out


def umec_layers(lines):
    layers = []
    for e in lines:
        for k in e:
            if k.startswith("s.") and k[2:] not in layers:
                layers.append(k[2:])
    return layers


def fraction(num, den, minus=False):
    def f(e):
        if not isinstance(e.get(den), (int, float)) or e[den] <= 0 or not isinstance(e.get(num), (int, float)):
            return None
        return 1 - e[num] / e[den] if minus else e[num] / e[den]
    return f


def main():
    args = sys.argv[1:]
    if "--" not in args:
        fail("usage: report_check.py DOM_FILE CHART_ID... -- RUN_DIR...")
    sep = args.index("--")
    dom_file, charts, run_dirs = args[0], args[1:sep], args[sep + 1:]
    with open(dom_file) as f:
        dom = f.read()
    errors = pre(dom, "ctrps-errors")
    if errors:
        fail("the page recorded script errors: %s" % errors)
    rendered = pre(dom, "ctrps-rendered")
    for c in charts:
        if c not in rendered:
            fail("chart %s was not drawn (drawn: %s)" % (c, sorted(rendered)))
        if not rendered[c]["drawn"]:
            fail("chart %s has an empty plot area" % c)
    runs = [read_run(d) for d in run_dirs]
    check_lines(rendered, "loss_step", expected_lines(runs, "train", "step", "loss"))
    check_lines(rendered, "loss_time", expected_lines(runs, "train", "seconds", "loss"))
    check_lines(rendered, "auc_step", expected_lines(runs, "valid", "step", "auc"))
    check_lines(rendered, "auc_time", expected_lines(runs, "valid", "seconds", "auc"))
    check_lines(rendered, "logloss_step", expected_lines(runs, "valid", "step", "logloss"))
    check_lines(rendered, "throughput", expected_lines(runs, "train", "step", "samples_per_s"))
    check_split(rendered, "split", split_bars(
        runs, "train_done", lambda name, e, i, n: name if n == 1 else "%s #%d" % (name, i + 1)))
    check_split(rendered, "worker_split", split_bars(
        runs, "worker_split", lambda name, e, i, n: "%s: worker %d (rank %d)" % (name, e["worker"], e["rank"])))
    check_tradeoff(rendered, runs, "tradeoff_bytes", lambda e: e.get("bundle_bytes", e.get("bytes")))
    check_tradeoff(rendered, runs, "tradeoff_latency", lambda e: e.get("row_p50_us"))
    if "umec_resource" in rendered or any(e.get("event") == "umec" for _, ev in runs for e in ev):
        check_lines(rendered, "umec_resource", step_series(runs, "umec", lambda lines: [
            ("resource", lambda e: e.get("resource")), ("budget", lambda e: e.get("budget"))]))
        check_lines(rendered, "umec_dropped", step_series(runs, "umec", lambda lines: [
            (l, lambda e, l=l: e.get("dropped." + l)) for l in umec_layers(lines)]))
        check_lines(rendered, "umec_duals", step_series(runs, "umec", lambda lines: [
            ("z", lambda e: e.get("z"))] + [("y " + l, lambda e, l=l: e.get("y." + l)) for l in umec_layers(lines)]))
    if "deeplight_sparsity" in rendered or any(e.get("event") == "prune" for _, ev in runs for e in ev):
        check_lines(rendered, "deeplight_sparsity", step_series(runs, "prune", lambda lines: [
            ("target (MLP)", lambda e: e.get("target")),
            ("MLP", fraction("mlp_nonzero", "mlp_weights", minus=True)),
            ("pairs", fraction("pairs_nonzero", "pairs", minus=True)),
            ("embeddings", fraction("embedding_zero", "embedding_entries"))]))
    print("%s: %d charts hold the metrics of %s" % (dom_file, len(rendered), ", ".join(n for n, _ in runs)))


main()
