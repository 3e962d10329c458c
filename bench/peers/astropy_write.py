"""Peer for bench/fits-write.ts: astropy writes a table held in memory as numpy arrays.

Usage: /usr/bin/python3 astropy_write.py IN OUT CHECKSUM(0|1)
The columns of HDU 1 of IN are first loaded into plain numpy arrays (not timed); then
BinTableHDU.from_columns and writeto are timed, as a program holding its catalogue in
numpy arrays would write it. Prints the elapsed seconds and the bytes written as JSON.
"""
import json
import os
import sys
import time

import numpy as np
from astropy.io import fits

src, out, checksum = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
with fits.open(src, memmap=False) as f:
    data = f[1].data
    arrays = [(c.name, c.format, np.array(data[c.name])) for c in f[1].columns]
t0 = time.perf_counter()
hdu = fits.BinTableHDU.from_columns([fits.Column(name=n, format=fmt, array=a) for n, fmt, a in arrays])
fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out, overwrite=True, checksum=checksum)
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "bytes": os.path.getsize(out)}))
