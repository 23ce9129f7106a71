// The charts of a ctrps report page (launch/report/report_page.cc embeds
// this file after Chart.js). The runs' metrics lines are in the JSON of
// #ctrps-data; each chart is drawn from them, and what every chart holds
// once drawn is written back into #ctrps-rendered (JSON), so a headless
// browser's DOM dump shows the plotted values (tests/integration/report.sh).
(function () {
  'use strict';
  const RUNS = JSON.parse(document.getElementById('ctrps-data').textContent);
  const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b',
                   '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  const PHASES = ['read', 'pull', 'compute', 'allreduce', 'push', 'wait'];
  const PHASE_COLORS = ['#8c564b', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#c7c7c7'];
  const rendered = {};

  function color(i) { return PALETTE[i % PALETTE.length]; }
  function events(run, name) { return run.events.filter(e => e.event === name); }
  function num(v) { return typeof v === 'number' && isFinite(v); }

  // The training segments of a run: a compress run fine-tunes once per
  // stage, each from step 0, so its train/eval lines restart; a resumed
  // run's clock restarts at the "resume" line and is shifted to go on.
  function segments(run) {
    const segs = [];
    let cur = null, lastStep = -1, offset = 0, lastSeconds = 0, resumed = false;
    for (const e of run.events) {
      if (e.event === 'resume') { offset = lastSeconds; resumed = true; continue; }
      if (e.event !== 'train' && !(e.event === 'eval' && e.split === 'valid')) continue;
      if (!num(e.step)) continue;
      if (cur === null || e.step < lastStep) {
        // A resume that repeats steps starts a new part on the same clock;
        // a new fine-tuning starts its own clock.
        cur = {train: [], valid: []};
        segs.push(cur);
        if (!resumed) offset = 0;
      }
      resumed = false;
      lastStep = e.step;
      const seconds = num(e.seconds) ? e.seconds + offset : null;
      if (seconds !== null) lastSeconds = seconds;
      (e.event === 'train' ? cur.train : cur.valid).push(Object.assign({}, e, {t: seconds}));
    }
    return segs;
  }

  function segmentLabel(run, i, n) {
    if (n === 1) return run.name;
    return run.name + (run.compress ? ' (fine-tuning ' + (i + 1) + ')' : ' (part ' + (i + 1) + ')');
  }

  // One line per run (and segment): points {x, y} from `pick`.
  function lineDatasets(kind, xKey, yKey) {
    const out = [];
    RUNS.forEach((run, r) => {
      const segs = segments(run);
      segs.forEach((seg, i) => {
        const data = seg[kind].filter(e => num(e[xKey]) && num(e[yKey]))
                              .map(e => ({x: e[xKey], y: e[yKey]}));
        if (data.length === 0) return;
        out.push({label: segmentLabel(run, i, segs.length), data: data,
                  borderColor: color(r), backgroundColor: color(r),
                  borderDash: i > 0 ? [6, 3] : [], pointRadius: data.length > 60 ? 0 : 2,
                  borderWidth: 1.5, tension: 0});
      });
    });
    return out;
  }

  function note(id, text) {
    const box = document.getElementById('box-' + id);
    if (!box) return;
    box.classList.add('empty');
    box.querySelector('.note').textContent = text;
  }

  function draw(id, config, xTitle, yTitle) {
    const canvas = document.getElementById('chart-' + id);
    if (!canvas) throw new Error('the page has no canvas chart-' + id);
    config.options = Object.assign({
      animation: false, responsive: true, maintainAspectRatio: false,
      plugins: {legend: {position: 'bottom'}},
    }, config.options || {});
    if (!config.options.scales) {
      config.options.scales = {
        x: {type: 'linear', title: {display: true, text: xTitle}},
        y: {title: {display: true, text: yTitle}},
      };
    }
    const chart = new Chart(canvas.getContext('2d'), config);
    rendered[id] = {
      type: config.type,
      drawn: !!(chart.chartArea && chart.chartArea.right > chart.chartArea.left),
      labels: chart.data.labels || [],
      datasets: chart.data.datasets.map(d => ({label: d.label, data: d.data})),
    };
    return chart;
  }

  function lineChart(id, kind, xKey, yKey, xTitle, yTitle, empty) {
    const ds = lineDatasets(kind, xKey, yKey);
    if (ds.length === 0) { note(id, empty); return; }
    draw(id, {type: 'line', data: {datasets: ds}}, xTitle, yTitle);
  }

  // Per-step time split (ms per step) as stacked bars: one bar per
  // training (train_done line), or per worker (worker_split lines).
  function splitChart(id, event, barLabel, empty) {
    const labels = [], rows = [];
    RUNS.forEach(run => {
      const lines = events(run, event);
      lines.forEach((e, i) => {
        if (!num(e.steps) || e.steps <= 0) return;
        labels.push(barLabel(run, e, i, lines.length));
        rows.push(PHASES.map(p => num(e[p + '_s']) ? 1000 * e[p + '_s'] / e.steps : 0));
      });
    });
    if (rows.length === 0) { note(id, empty); return; }
    const ds = PHASES.map((p, k) => ({label: p, data: rows.map(r => r[k]),
                                      backgroundColor: PHASE_COLORS[k]}));
    draw(id, {type: 'bar', data: {labels: labels, datasets: ds}, options: {
      indexAxis: 'y',
      scales: {x: {stacked: true, title: {display: true, text: 'ms per step'}},
               y: {stacked: true}},
    }});
  }

  // AUC against size or latency: one point per compressed model of every
  // compress run (before and after fine-tuning), the uncompressed models
  // in their own, marked dataset.
  function tradeoffChart(id, xKeys, xTitle, empty) {
    const xOf = e => { for (const k of xKeys) if (num(e[k])) return e[k]; return null; };
    const aucOf = e => num(e.test_auc) ? e.test_auc : (num(e.valid_auc) ? e.valid_auc : null);
    const base = {label: 'uncompressed', data: [], pointStyle: 'star', pointRadius: 9,
                  borderColor: '#000', backgroundColor: '#000'};
    const out = [base];
    let yKey = null;
    RUNS.forEach((run, r) => {
      const pts = [];
      events(run, 'compress_model').forEach(e => {
        const x = xOf(e), y = aucOf(e);
        if (x === null || y === null) return;
        yKey = yKey || (num(e.test_auc) ? 'test AUC' : 'valid AUC');
        const p = {x: x, y: y, model: e.model, run: run.name};
        if (e.model === 'uncompressed') base.data.push(p); else pts.push(p);
      });
      if (pts.length > 0)
        out.push({label: run.name, data: pts, pointRadius: 5, borderColor: color(r),
                  backgroundColor: color(r),
                  pointStyle: pts.map(p => /before fine-tuning/.test(p.model) ? 'triangle' : 'circle')});
    });
    if (out.length === 1 && base.data.length === 0) { note(id, empty); return; }
    // Room around the points, so none sits on the plot's edge.
    const xs = [].concat(...out.map(d => d.data.map(p => p.x))).filter(x => x > 0);
    const ys = [].concat(...out.map(d => d.data.map(p => p.y)));
    if (xs.length === 0) { note(id, empty); return; }
    const ySpan = Math.max(Math.max(...ys) - Math.min(...ys), 0.002);
    draw(id, {type: 'scatter', data: {datasets: out}, options: {
      scales: {x: {type: 'logarithmic', title: {display: true, text: xTitle},
                   min: Math.min(...xs) / 1.5, max: Math.max(...xs) * 1.5},
               y: {title: {display: true, text: yKey},
                   min: Math.min(...ys) - 0.15 * ySpan, max: Math.max(...ys) + 0.15 * ySpan}},
      plugins: {legend: {position: 'bottom'}, tooltip: {callbacks: {
        label: c => c.raw.run + ': ' + c.raw.model + ' (' + c.raw.x + ', ' + c.raw.y.toFixed(5) + ')'}}},
    }});
  }

  // Lines from per-step events: for every run, every series [suffix, y(e)]
  // with a value gives a dataset "<run>: <suffix>" of {x: step, y}.
  function stepSeriesChart(id, event, seriesOf, yTitle, empty) {
    if (!document.getElementById('chart-' + id)) return;  // its section is not on the page
    const out = [];
    RUNS.forEach((run, r) => {
      const lines = events(run, event).filter(e => num(e.step));
      seriesOf(lines).forEach(([suffix, y, dashed], k) => {
        const data = lines.filter(e => num(y(e))).map(e => ({x: e.step, y: y(e)}));
        if (data.length === 0) return;
        out.push({label: run.name + ': ' + suffix, data: data, borderColor: color(r + k),
                  backgroundColor: color(r + k), borderDash: dashed ? [6, 3] : [],
                  pointRadius: data.length > 60 ? 0 : 2, borderWidth: 1.5, tension: 0});
      });
    });
    if (out.length === 0) { note(id, empty); return; }
    draw(id, {type: 'line', data: {datasets: out}}, 'step', yTitle);
  }

  // The layers of UMEC's lines: their "s.<layer>" fields, in first-seen order.
  function umecLayers(lines) {
    const layers = [];
    lines.forEach(e => Object.keys(e).forEach(k => {
      if (k.startsWith('s.') && !layers.includes(k.slice(2))) layers.push(k.slice(2));
    }));
    return layers;
  }

  function drawCompressionMethods() {
    const noUmec = 'no "umec" lines (UMEC writes one every umec.log_every_steps updates)';
    stepSeriesChart('umec_resource', 'umec', () => [['resource', e => e.resource],
                                                    ['budget', e => e.budget, true]],
                    'fraction of the dense MLP multiply-adds', noUmec);
    stepSeriesChart('umec_dropped', 'umec',
                    lines => umecLayers(lines).map(l => [l, e => e['dropped.' + l]]),
                    'groups dropped', noUmec);
    stepSeriesChart('umec_duals', 'umec',
                    lines => [['z', e => e.z]].concat(umecLayers(lines).map(l => ['y ' + l, e => e['y.' + l]])),
                    'multiplier', noUmec);
    const share = (part, all) => e => (num(e[all]) && e[all] > 0 && num(e[part])) ? e[part] / e[all] : null;
    stepSeriesChart('deeplight_sparsity', 'prune', () => [
      ['target (MLP)', e => e.target, true],
      ['MLP', e => (num(e.mlp_weights) && e.mlp_weights > 0) ? 1 - e.mlp_nonzero / e.mlp_weights : null],
      ['pairs', e => (num(e.pairs) && e.pairs > 0) ? 1 - e.pairs_nonzero / e.pairs : null],
      ['embeddings', share('embedding_zero', 'embedding_entries')],
    ], 'sparsity (fraction zero)', 'no "prune" lines (DeepLight writes one per pruning)');
  }

  function drawAll() {
    const noTrain = 'no "train" lines in these metrics (they come every 100 steps)';
    const noValid = 'no validation ("eval", split "valid") lines: the run had no data.valid';
    const noTime = 'these metrics carry no "seconds" field (written by an older ctrps)';
    lineChart('loss_step', 'train', 'step', 'loss', 'step', 'training loss', noTrain);
    lineChart('loss_time', 'train', 't', 'loss', 'seconds', 'training loss', noTime);
    lineChart('auc_step', 'valid', 'step', 'auc', 'step', 'validation AUC', noValid);
    lineChart('auc_time', 'valid', 't', 'auc', 'seconds', 'validation AUC', noValid);
    lineChart('logloss_step', 'valid', 'step', 'logloss', 'step', 'validation logloss', noValid);
    lineChart('logloss_time', 'valid', 't', 'logloss', 'seconds', 'validation logloss', noValid);
    lineChart('throughput', 'train', 'step', 'samples_per_s', 'step', 'samples/s (since start)', noTrain);
    splitChart('split', 'train_done',
               (run, e, i, n) => n === 1 ? run.name : run.name + ' #' + (i + 1),
               'no "train_done" line: no training finished');
    splitChart('worker_split', 'worker_split',
               (run, e) => run.name + ': worker ' + e.worker + ' (rank ' + e.rank + ')',
               'one worker only: the per-worker split is written by distributed runs');
    tradeoffChart('tradeoff_bytes', ['bundle_bytes', 'bytes'], 'bytes (log scale)',
                  'no compression run among these metrics ("compress_model" lines)');
    tradeoffChart('tradeoff_latency', ['row_p50_us'], 'single-row latency p50, µs (log scale)',
                  'no single-row latency in these metrics ("row_p50_us" of "compress_model" lines)');
    drawCompressionMethods();
  }

  try {
    drawAll();
  } catch (err) {
    console.error('ctrps report: ' + (err && err.stack ? err.stack : err));
  }
  document.getElementById('ctrps-rendered').textContent = JSON.stringify(rendered);
  document.body.setAttribute('data-charts', String(Object.keys(rendered).length));
})();
