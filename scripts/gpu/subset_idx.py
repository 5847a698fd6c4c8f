#!/usr/bin/env python3
"""Writes the first N records of each Fashion-MNIST IDX file (gzip) into a folder, so a GPU machine
without the dataset can train on real images. Usage: subset_idx.py SRC_DIR DEST_DIR TRAIN_N TEST_N"""
import gzip
import struct
import sys

src, dest, train_n, test_n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for prefix, n in (("train", train_n), ("t10k", test_n)):
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        with gzip.open(f"{src}/{prefix}-{kind}.gz", "rb") as f:
            magic, count = struct.unpack(">II", f.read(8))
            dims = magic & 0xFF
            shape = struct.unpack(">" + "I" * (dims - 1), f.read(4 * (dims - 1)))
            if count < n:
                sys.exit(f"{prefix}-{kind} holds {count} records, fewer than {n}")
            record = 1
            for d in shape:
                record *= d
            body = f.read(n * record)
        with gzip.open(f"{dest}/{prefix}-{kind}.gz", "wb", compresslevel=9) as out:
            out.write(struct.pack(">II", magic, n) + struct.pack(">" + "I" * len(shape), *shape) + body)
