"""Peer for bench/sim-throughput.ts: numpy generates detection rows and astropy writes them.

Usage: /usr/bin/python3 numpy_detections.py ROWS OUT COLUMNS
COLUMNS is NAME:TYPE,... (TYPE one of u8 u16 i16 u32 i32 i64 f32 f64), the simulator's
CMF_PS1_V5 layout. Each column is filled from a seeded numpy generator with one vectorised
draw (normal for floats, integers for integer columns): far less than the simulator
computes per row, but the same rows and bytes. The rows are cut into tables of about
2,000 rows (a chip's worth) written as one file of binary-table extensions with CHECKSUM,
like an smf. Prints the seconds (generation and writing, after the imports) and the bytes
written as JSON.
"""
import json
import os
import sys
import time

import numpy as np
from astropy.io import fits

rows, out, spec = int(sys.argv[1]), sys.argv[2], sys.argv[3]
columns = [c.split(":") for c in spec.split(",")]
FORMAT = {"u8": "B", "u16": "I", "i16": "I", "u32": "J", "i32": "J", "i64": "K", "f32": "E", "f64": "D"}
DTYPE = {"u8": np.uint8, "u16": np.uint16, "i16": np.int16, "u32": np.uint32, "i32": np.int32, "i64": np.int64, "f32": np.float32, "f64": np.float64}
CHIP = 2000

t0 = time.perf_counter()
rng = np.random.default_rng(1)
hdus = [fits.PrimaryHDU()]
for start in range(0, rows, CHIP):
    n = min(CHIP, rows - start)
    cols = []
    for name, kind in columns:
        dtype = DTYPE[kind]
        if kind.startswith("f"):
            array = rng.normal(size=n).astype(dtype)
        else:
            array = rng.integers(0, 30000, size=n).astype(dtype)
        cols.append(fits.Column(name=name, format=FORMAT[kind], array=array))
    hdus.append(fits.BinTableHDU.from_columns(cols, name=f"T{len(hdus):04d}"))
fits.HDUList(hdus).writeto(out, overwrite=True, checksum=True)
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "bytes": os.path.getsize(out), "rows": rows}))
