// The spatial index of addstar: objects hashed into cells of a zone grid (zones of declination,
// each cut in RA into cells at least `cell` degrees wide at the zone's poleward edge). Cells
// are four match radii across, so a query usually looks in one to four cells: the neighbours
// in RA or declination only when the circle reaches over that edge. Cells live in an
// open-addressing hash of typed arrays; each cell heads a linked list of entries. When an
// object's mean position moves into another cell it gets a second entry there (the old one
// still points at the object and is harmless: distances use the current position).

const EMPTY = -1;

/** Objects by position, for nearest-neighbour matching within a radius. */
export class MatchGrid {
  readonly cell: number;
  private readonly zones: number;
  private readonly raCells: Int32Array;
  private keyZ: Int32Array;
  private keyR: Int32Array;
  private head: Int32Array;
  private mask: number;
  private used = 0;
  private entryObj: Int32Array;
  private entryNext: Int32Array;
  private entries = 0;
  /** Current positions of the objects (degrees), by object number. */
  ra: Float64Array;
  dec: Float64Array;
  /** The last image that claimed each object (0: none). */
  lastImage: Uint32Array;
  private cellZ: Int32Array;
  private cellR: Int32Array;
  private count = 0;

  /** `radius`: the largest match radius to be asked for, in degrees. */
  constructor(radius: number, expectedObjects = 1024) {
    this.cell = Math.max(4 * radius, 1e-6);
    this.zones = Math.ceil(180 / this.cell);
    this.raCells = new Int32Array(this.zones);
    for (let z = 0; z < this.zones; z++) {
      const d0 = -90 + z * this.cell;
      const poleward = Math.max(Math.abs(d0), Math.abs(Math.min(90, d0 + this.cell)));
      const width = 360 * Math.cos(poleward * Math.PI / 180);
      this.raCells[z] = Math.max(1, Math.floor(width / this.cell));
    }
    let size = 1024;
    while (size < expectedObjects * 2) size *= 2;
    this.keyZ = new Int32Array(size).fill(EMPTY);
    this.keyR = new Int32Array(size);
    this.head = new Int32Array(size).fill(EMPTY);
    this.mask = size - 1;
    const n = Math.max(16, expectedObjects);
    this.entryObj = new Int32Array(n);
    this.entryNext = new Int32Array(n);
    this.ra = new Float64Array(n);
    this.dec = new Float64Array(n);
    this.lastImage = new Uint32Array(n);
    this.cellZ = new Int32Array(n);
    this.cellR = new Int32Array(n);
  }

  /** Objects added. */
  get size(): number {
    return this.count;
  }

  private zoneOf(dec: number): number {
    const z = Math.floor((dec + 90) / this.cell);
    return z < 0 ? 0 : z >= this.zones ? this.zones - 1 : z;
  }

  private raCellOf(z: number, ra: number): number {
    const n = this.raCells[z];
    const c = Math.floor((ra * n) / 360);
    return c >= n ? n - 1 : c < 0 ? 0 : c;
  }

  private slot(z: number, r: number): number {
    let h = (Math.imul(z, 0x9e3779b1) ^ Math.imul(r + 0x27d4eb2f, 0x85ebca77)) >>> 0;
    h = (h ^ (h >>> 15)) & this.mask;
    for (;;) {
      const kz = this.keyZ[h];
      if (kz === EMPTY || (kz === z && this.keyR[h] === r)) return h;
      h = (h + 1) & this.mask;
    }
  }

  private growHash(): void {
    const oldZ = this.keyZ;
    const oldR = this.keyR;
    const oldH = this.head;
    const size = oldZ.length * 2;
    this.keyZ = new Int32Array(size).fill(EMPTY);
    this.keyR = new Int32Array(size);
    this.head = new Int32Array(size).fill(EMPTY);
    this.mask = size - 1;
    for (let i = 0; i < oldZ.length; i++) {
      if (oldZ[i] === EMPTY) continue;
      const s = this.slot(oldZ[i], oldR[i]);
      this.keyZ[s] = oldZ[i];
      this.keyR[s] = oldR[i];
      this.head[s] = oldH[i];
    }
  }

  private growObjects(): void {
    const n = this.ra.length * 2;
    const grow = <T extends Float64Array | Uint32Array | Int32Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a);
      return b;
    };
    this.ra = grow(this.ra);
    this.dec = grow(this.dec);
    this.lastImage = grow(this.lastImage);
    this.cellZ = grow(this.cellZ);
    this.cellR = grow(this.cellR);
  }

  private link(obj: number, z: number, r: number): void {
    if (this.used * 2 >= this.keyZ.length) this.growHash();
    const s = this.slot(z, r);
    if (this.keyZ[s] === EMPTY) {
      this.keyZ[s] = z;
      this.keyR[s] = r;
      this.used++;
    }
    if (this.entries === this.entryObj.length) {
      const a = new Int32Array(this.entries * 2);
      a.set(this.entryObj);
      this.entryObj = a;
      const b = new Int32Array(this.entries * 2);
      b.set(this.entryNext);
      this.entryNext = b;
    }
    const e = this.entries++;
    this.entryObj[e] = obj;
    this.entryNext[e] = this.head[s];
    this.head[s] = e;
    this.cellZ[obj] = z;
    this.cellR[obj] = r;
  }

  /** Adds an object at a position; returns its number (0, 1, 2... in order of adding). */
  add(ra: number, dec: number): number {
    const obj = this.count++;
    if (obj === this.ra.length) this.growObjects();
    this.ra[obj] = ra;
    this.dec[obj] = dec;
    const z = this.zoneOf(dec);
    this.link(obj, z, this.raCellOf(z, ra));
    return obj;
  }

  /** Moves an object (its mean changed); indexes it in its new cell if it left the old one. */
  move(obj: number, ra: number, dec: number): void {
    this.ra[obj] = ra;
    this.dec[obj] = dec;
    const z = this.zoneOf(dec);
    const r = this.raCellOf(z, ra);
    if (z !== this.cellZ[obj] || r !== this.cellR[obj]) this.link(obj, z, r);
  }

  /**
   * The nearest object within `radius` degrees of a position that `image` has not claimed
   * yet (one object per detection of an image); -1 if none.
   */
  nearest(ra: number, dec: number, radius: number, image: number): number {
    const zf = (dec + 90) / this.cell;
    const z0 = this.zoneOf(dec);
    const cosd = Math.cos(dec * Math.PI / 180);
    const r2 = radius * radius;
    let best = -1;
    let bestD = r2;
    // Neighbouring zones only when the circle reaches over the zone's edge.
    const rz = radius / this.cell;
    const zLo = z0 > 0 && zf - z0 < rz ? z0 - 1 : z0;
    const zHi = z0 < this.zones - 1 && z0 + 1 - zf < rz ? z0 + 1 : z0;
    for (let z = zLo; z <= zHi; z++) {
      const n = this.raCells[z];
      const rf = (ra * n) / 360;
      let c = Math.floor(rf);
      if (c >= n) c = n - 1;
      // The circle's half-width in units of this zone's RA cells.
      const rr = cosd > 1e-9 ? (radius / cosd) * (n / 360) : n;
      let lo = rf - c < rr ? c - 1 : c;
      let hi = c + 1 - rf < rr ? c + 1 : c;
      if (hi - lo + 1 >= n) { lo = 0; hi = n - 1; }
      for (let k = lo; k <= hi; k++) {
        const r = k < 0 ? k + n : k >= n ? k - n : k;
        let h = (Math.imul(z, 0x9e3779b1) ^ Math.imul(r + 0x27d4eb2f, 0x85ebca77)) >>> 0;
        h = (h ^ (h >>> 15)) & this.mask;
        let e = EMPTY;
        for (;;) {
          const kz = this.keyZ[h];
          if (kz === EMPTY) break;
          if (kz === z && this.keyR[h] === r) { e = this.head[h]; break; }
          h = (h + 1) & this.mask;
        }
        for (; e !== EMPTY; e = this.entryNext[e]) {
          const o = this.entryObj[e];
          if (this.lastImage[o] === image) continue;
          let dra = this.ra[o] - ra;
          if (dra > 180) dra -= 360; else if (dra < -180) dra += 360;
          dra *= cosd;
          const ddec = this.dec[o] - dec;
          const d = dra * dra + ddec * ddec;
          if (d < bestD || (d === bestD && (best < 0 || o < best))) {
            bestD = d;
            best = o;
          }
        }
      }
    }
    return best;
  }
}
