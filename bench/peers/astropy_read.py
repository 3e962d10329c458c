"""Peer for bench/fits-read.ts: astropy reads every column of one HDU and touches each value.

Usage: /usr/bin/python3 astropy_read.py FILE HDU
Prints the elapsed seconds (open to last value touched) as JSON.
"""
import json
import sys
import time

import numpy as np
from astropy.io import fits

path, hdu = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
with fits.open(path, memmap=True) as f:
    data = f[hdu].data
    total = 0.0
    for name in data.columns.names:
        col = data[name]
        if col.dtype.kind in 'SU':
            total += sum(len(s) for s in col)
        elif col.dtype.kind == 'b':
            total += int(np.count_nonzero(col))
        else:
            total += float(np.nansum(col.astype(np.float64)))
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "checksum": total}))
