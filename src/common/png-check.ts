// For tests: decodes a PNG file with an independent decoder (Python's standard library: zlib
// and struct, no code of ours), checking signature, chunk CRCs, IHDR, palette and filters.
import { runPython } from './testing.ts';

/** What the independent decoder found in a PNG file. */
export interface CheckedPng {
  readonly width: number;
  readonly height: number;
  readonly colourType: number;
  readonly bitDepth: number;
  /** Chunk types in file order. */
  readonly chunks: readonly string[];
  readonly text: Readonly<Record<string, string>>;
  /** The pixels as RGBA, 4 bytes per pixel. */
  readonly rgba: Uint8Array;
}

const DECODER = String.raw`
import sys, zlib, struct, json, base64
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'bad signature'
pos = 8; chunks = []; idat = b''; plte = None; trns = b''; text = {}; ihdr = None
while pos < len(data):
    n, = struct.unpack('>I', data[pos:pos+4]); kind = data[pos+4:pos+8]; body = data[pos+8:pos+8+n]
    crc, = struct.unpack('>I', data[pos+8+n:pos+12+n])
    assert len(body) == n, 'truncated chunk'
    assert zlib.crc32(kind + body) & 0xffffffff == crc, 'bad CRC in ' + kind.decode()
    chunks.append(kind.decode('latin-1')); pos += 12 + n
    if kind == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
    elif kind == b'PLTE': plte = body
    elif kind == b'tRNS': trns = body
    elif kind == b'IDAT': idat += body
    elif kind == b'tEXt':
        k, v = body.split(b'\0', 1); text[k.decode('latin-1')] = v.decode('latin-1')
    elif kind == b'IEND': break
assert pos == len(data), 'bytes after IEND'
assert chunks[0] == 'IHDR' and chunks[-1] == 'IEND'
w, h, depth, ctype, comp, filt, inter = ihdr
assert comp == 0 and filt == 0 and inter == 0
channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
bits = depth * channels
stride = (w * bits + 7) // 8
bpp = max(1, bits // 8)
raw = zlib.decompress(idat)
assert len(raw) == h * (stride + 1), 'image data of the wrong size'
prev = bytearray(stride); rows = []
for y in range(h):
    f = raw[y * (stride + 1)]; line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
        if f == 0: p = 0
        elif f == 1: p = a
        elif f == 2: p = b
        elif f == 3: p = (a + b) // 2
        elif f == 4:
            q = a + b - c; pa = abs(q - a); pb = abs(q - b); pc = abs(q - c)
            p = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
        else: raise AssertionError('bad filter %d' % f)
        line[i] = (line[i] + p) & 0xff
    rows.append(line); prev = line
out = bytearray()
for line in rows:
    for x in range(w):
        if ctype == 6: out += line[x*4:x*4+4]
        elif ctype == 2: out += line[x*3:x*3+3] + b'\xff'
        elif ctype == 3:
            per = 8 // depth; byte = line[x // per]; shift = 8 - depth * (x % per + 1)
            k = (byte >> shift) & ((1 << depth) - 1)
            assert plte is not None and k < len(plte) // 3, 'index outside the palette'
            out += plte[k*3:k*3+3] + bytes([trns[k] if k < len(trns) else 255])
        else: raise AssertionError('colour type %d not handled' % ctype)
print(json.dumps({'width': w, 'height': h, 'colourType': ctype, 'bitDepth': depth, 'chunks': chunks,
                  'text': text, 'rgba': base64.b64encode(bytes(out)).decode()}))
`;

/** Decodes the PNG file at `path` with Python's standard library; throws when it is not valid. */
export async function checkPng(path: string): Promise<CheckedPng> {
  const parsed = JSON.parse(await runPython(DECODER, [path])) as Omit<CheckedPng, 'rgba'> & { rgba: string };
  return { ...parsed, rgba: new Uint8Array(Buffer.from(parsed.rgba, 'base64')) };
}
