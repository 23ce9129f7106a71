// ONNX Runtime side of bench/inference_bench.cc (npm's onnxruntime-node).
//   node ort_bench.js MODEL.onnx QUERIES.bin N F SINGLE_ROWS BATCH BATCH_SECONDS LOGITS_OUT.bin
// QUERIES.bin: N*F int64 row indices, then N*F float32 values (already mapped
// through vocab.bin). Prints one line:
//   ort p50_us=.. p99_us=.. batch_rows_per_s=..
// and writes the logits of the first floor(N / BATCH) batches to LOGITS_OUT.bin.
// One intra-op and one inter-op thread, all graph optimisations.
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, queries, ns, fs_, singles, bs, secs, logitsOut] = process.argv.slice(2);
  const N = parseInt(ns, 10), F = parseInt(fs_, 10), S = parseInt(singles, 10);
  const B = parseInt(bs, 10), seconds = parseFloat(secs);
  const buf = fs.readFileSync(queries);
  const idx = new BigInt64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + 8 * N * F));
  const val = new Float32Array(buf.buffer.slice(buf.byteOffset + 8 * N * F,
                                                buf.byteOffset + 12 * N * F));
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const feeds = (start, n) => ({
    row_index: new ort.Tensor('int64', idx.subarray(start * F, (start + n) * F), [n, F]),
    value: new ort.Tensor('float32', val.subarray(start * F, (start + n) * F), [n, F]),
  });
  const fetch = ['logit'];
  // Single rows: each call one example, tensors built inside the timing (as
  // a server would per request).
  for (let i = 0; i < 1000; ++i) await session.run(feeds(i % N, 1), fetch);
  const lat = new Float64Array(S);
  for (let i = 0; i < S; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds(i % N, 1), fetch);
    lat[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  lat.sort();
  const pct = (q) => lat[Math.min(S - 1, Math.floor(q * S))];
  // Batches.
  const nb = Math.floor(N / B);
  const logits = new Float32Array(nb * B);
  for (let b = 0; b < nb; ++b) {
    const r = await session.run(feeds(b * B, B), fetch);
    logits.set(r.logit.data, b * B);
  }
  fs.writeFileSync(logitsOut, Buffer.from(logits.buffer));
  let rows = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  for (let i = 0; elapsed < seconds; ++i) {
    await session.run(feeds((i % nb) * B, B), fetch);
    rows += B;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  console.log(`ort p50_us=${pct(0.5).toFixed(2)} p99_us=${pct(0.99).toFixed(2)} ` +
              `batch_rows_per_s=${(rows / elapsed).toFixed(0)}`);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
