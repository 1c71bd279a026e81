#!/usr/bin/env python3
"""Write the shipped shape-only workloads in SCALE-Sim's topology formats.

    python3 scripts/workloads.py            # writes models/workloads/*.csv

Each network is built here from its published architecture (no file is copied from elsewhere):

- resnet50.csv     ResNet-50 at 224x224, torchvision's "v1.5" (the stride-2 sits on the 3x3
                   convolution of a stage's first bottleneck), He et al., "Deep Residual Learning
                   for Image Recognition", CVPR 2016, Table 1; torchvision.models.resnet50.
- mobilenet_v1.csv MobileNet-v1 (width 1.0) at 224x224, Howard et al., "MobileNets", 2017,
                   Table 1 (the second-to-last depthwise layer has stride 1: Table 1's "s2" there
                   is a known misprint; the map stays 7x7).
- bert_base_encoder.csv
                   One BERT-base encoder layer at sequence length 128 (hidden 768, 12 heads of 64,
                   feed-forward 3072), Devlin et al., "BERT", NAACL 2019, as GEMMs (M, N, K):
                   Q/K/V/output projections, per-head scores Q.K^T and context P.V, and the two
                   feed-forward layers. Softmax, layer norm and GELU are not GEMMs and are left out.

Conventions (SCALE-Sim v2's): IFMAP sizes include the zero padding; a depthwise row's name
contains "DP" and stands for one single-channel convolution per channel; pooling layers are not
GEMMs and are left out. The MAC totals are printed; docs/workloads.md quotes them.
"""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "workloads")
CONV_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
               "Num Filter, Strides,")


def conv(rows, name, side, k, cin, cout, stride, pad):
    """Append a square convolution on a side x side map; return the output side."""
    ifmap = side + 2 * pad
    rows.append((name, ifmap, ifmap, k, k, cin, cout, stride))
    return (ifmap - k) // stride + 1


def resnet50():
    rows = []
    side = conv(rows, "conv1", 224, 7, 3, 64, 2, 3)
    side = (side + 2 - 3) // 2 + 1  # 3x3/2 max pool, padding 1: not a GEMM
    cin = 64
    for stage, (blocks, width, stride) in enumerate(
            [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)], start=2):
        for b in range(blocks):
            s = stride if b == 0 else 1
            p = f"conv{stage}_{b + 1}"
            conv(rows, f"{p}_a", side, 1, cin, width, 1, 0)
            out = conv(rows, f"{p}_b", side, 3, width, width, s, 1)
            conv(rows, f"{p}_c", out, 1, width, 4 * width, 1, 0)
            if b == 0:
                conv(rows, f"{p}_proj", side, 1, cin, 4 * width, s, 0)
            side, cin = out, 4 * width
    # global average pool, then the classifier as a 1x1 convolution on a 1x1 map
    rows.append(("fc", 1, 1, 1, 1, cin, 1000, 1))
    return rows


def mobilenet_v1():
    rows = []
    side = conv(rows, "conv0", 224, 3, 3, 32, 2, 1)
    cin = 32
    plan = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 + [
        (2, 1024), (1, 1024)]
    for i, (s, cout) in enumerate(plan, start=1):
        out = conv(rows, f"dw{i}_DP", side, 3, cin, 1, s, 1)
        conv(rows, f"pw{i}", out, 1, cin, cout, 1, 0)
        side, cin = out, cout
    rows.append(("fc", 1, 1, 1, 1, cin, 1000, 1))
    return rows


def bert_base_encoder(seq=128, hidden=768, heads=12, ffn=3072):
    d = hidden // heads
    rows = [(n, seq, hidden, hidden) for n in ("q_proj", "k_proj", "v_proj")]
    rows += [(f"scores_h{h}", seq, seq, d) for h in range(heads)]
    rows += [(f"context_h{h}", seq, d, seq) for h in range(heads)]
    rows += [("out_proj", seq, hidden, hidden), ("ffn1", seq, ffn, hidden),
             ("ffn2", seq, hidden, ffn)]
    return rows


def conv_macs(r):
    name, ih, iw, fh, fw, c, n, s = r
    oh, ow = (ih - fh) // s + 1, (iw - fw) // s + 1
    groups = c if "DP" in name else 1
    cin = 1 if "DP" in name else c
    return groups * oh * ow * fh * fw * cin * n


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, rows in (("resnet50", resnet50()), ("mobilenet_v1", mobilenet_v1())):
        with open(os.path.join(OUT, f"{name}.csv"), "w") as f:
            f.write(CONV_HEADER + "\n")
            for r in rows:
                f.write(", ".join(str(v) for v in r) + ",\n")
        print(f"{name}: {len(rows)} layers, {sum(map(conv_macs, rows)):,} MACs per image")
    rows = bert_base_encoder()
    with open(os.path.join(OUT, "bert_base_encoder.csv"), "w") as f:
        f.write("Layer, M, N, K,\n")
        for r in rows:
            f.write(", ".join(str(v) for v in r) + ",\n")
    print(f"bert_base_encoder: {len(rows)} GEMMs, {sum(m * n * k for _, m, n, k in rows):,} MACs")


if __name__ == "__main__":
    main()
