#!/usr/bin/env python3
"""Per-field evidence for UMEC's input selection on planted data.

For a saved DeepFM / DeepFwFM model (ctrps-model 1: dense.bin is the dense
values, 'bias' then 'mlp.0.weight' as a column-major out x in matrix, each
parameter padded to 16 floats; table_F.bin rows are a uint64 key, the
linear weight and the embedding) and the generator's meta.json, prints per
field: the squared norm of its group in the first MLP layer (what UMEC and
magnitude pruning rank by, as the paper's code does), the mean squared norm
of its embedding rows, and their product (the scale of the field's input to
the first layer); then where the planted noise fields rank under each.

  bench/umec_field_norms.py MODEL_DIR META_JSON FIRST_HIDDEN_WIDTH
"""
import json
import os
import struct
import sys

from array import array


def main():
    model, meta_path, hidden = sys.argv[1], sys.argv[2], int(sys.argv[3])
    meta = json.load(open(meta_path))
    names = [f["name"] for f in meta["fields"]]
    noise = set(meta["noise_fields"])
    tables = {}
    for line in open(os.path.join(model, "MANIFEST")):
        p = line.split()
        if p[0] == "table":
            tables[int(p[1])] = (int(p[2]), int(p[3]))
    nf = len(tables)
    width = tables[0][0] - 1  # the linear weight comes first
    dense = array("f")
    with open(os.path.join(model, "dense.bin"), "rb") as fh:
        dense.frombytes(fh.read())
    rows = []
    for f in range(nf):
        # mlp.0.weight starts after 'bias' (padded to 16 floats); input
        # column c is `hidden` floats from 16 + c * hidden.
        lo = 16 + f * width * hidden
        g = sum(float(v) * v for v in dense[lo:lo + width * hidden])
        dim, n = tables[f]
        with open(os.path.join(model, f"table_{f}.bin"), "rb") as fh:
            raw = fh.read()
        rec = struct.Struct(f"<Q{dim}f")
        tot = 0.0
        for r in rec.iter_unpack(raw[: n * rec.size]):
            tot += sum(v * v for v in r[2:])  # r[1]: the linear weight
        ems = tot / n if n else 0.0
        rows.append((names[f], g, ems, g * ems, n))
    print(f"{'field':6s} {'|W_g|^2':>10s} {'E|e|^2':>10s} {'product':>10s} {'rows':>9s}")
    for name, g, ems, prod, n in rows:
        print(f"{name:6s} {g:10.4f} {ems:10.4f} {prod:10.5f} {n:9d}{'  noise' if name in noise else ''}")
    for label, col in (("|W_g|^2", 1), ("|W_g|^2 * E|e|^2", 3)):
        order = sorted(rows, key=lambda r: r[col])
        ranks = [i + 1 for i, r in enumerate(order) if r[0] in noise]
        k = len(noise)
        prec = sum(r[0] in noise for r in order[:k]) / k
        print(f"by {label}: noise fields rank {ranks} of {nf}; the {k} weakest "
              f"[{' '.join(r[0] for r in order[:k])}]: precision {prec:.2f}")


if __name__ == "__main__":
    main()
