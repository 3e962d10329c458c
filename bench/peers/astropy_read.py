"""Peer for bench/fits-read.ts: astropy reads every column of one HDU and touches each value.

Usage: /usr/bin/python3 astropy_read.py FILE HDU
Prints the elapsed seconds (open to every column in native memory) and a checksum as JSON.
"""
import json
import sys
import time

import numpy as np
from astropy.io import fits

path, hdu = sys.argv[1], int(sys.argv[2])
# The timed part is the least astropy must do for values to be usable: open, and bring each
# column into native byte order in memory (one pass over every value). The checksum that
# the benchmark compares with ours is computed afterwards, outside the timing.
t0 = time.perf_counter()
with fits.open(path, memmap=True) as f:
    data = f[hdu].data
    columns = {}
    for name in data.columns.names:
        col = data[name]
        columns[name] = col if col.dtype.kind in 'SUb' else col.astype(col.dtype.newbyteorder('='))
    elapsed = time.perf_counter() - t0
    total = 0.0
    for col in columns.values():
        if col.dtype.kind in 'SU':
            total += sum(len(s) for s in col)
        elif col.dtype.kind == 'b':
            total += int(np.count_nonzero(col))
        else:
            total += float(np.nansum(col.astype(np.float64)))
print(json.dumps({"seconds": elapsed, "checksum": total}))
