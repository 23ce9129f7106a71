// Runs an exported ONNX graph under ONNX Runtime (npm's onnxruntime-node).
//   node ort_predict.js MODEL.onnx INPUT.bin OUTPUT.bin B F
// INPUT.bin: B*F int64 row indices then B*F float32 values (little-endian);
// OUTPUT.bin: B float32 logits then B float32 probabilities.
// Exit code 3 means onnxruntime-node is not installed.
const fs = require('fs');
let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  console.error('onnxruntime-node is not installed: ' + e.message);
  process.exit(3);
}

async function main() {
  const [model, input, output, bs, fs_] = process.argv.slice(2);
  const B = parseInt(bs, 10), F = parseInt(fs_, 10);
  const buf = fs.readFileSync(input);
  const n = B * F;
  const idx = new BigInt64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + 8 * n));
  const val = new Float32Array(buf.buffer.slice(buf.byteOffset + 8 * n, buf.byteOffset + 12 * n));
  const session = await ort.InferenceSession.create(model, {intraOpNumThreads: 1});
  const r = await session.run({
    row_index: new ort.Tensor('int64', idx, [B, F]),
    value: new ort.Tensor('float32', val, [B, F]),
  });
  const out = Buffer.alloc(8 * B);
  Buffer.from(r.logit.data.buffer, r.logit.data.byteOffset, 4 * B).copy(out, 0);
  Buffer.from(r.probability.data.buffer, r.probability.data.byteOffset, 4 * B).copy(out, 4 * B);
  fs.writeFileSync(output, out);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
