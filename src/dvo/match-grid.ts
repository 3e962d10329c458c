// The spatial index of addstar: objects hashed into cells of a zone grid (zones of declination,
// each cut in RA into cells at least `cell` degrees wide at the zone's poleward edge). Cells
// are four match radii across, so a query usually looks in one to four cells: the neighbours
// in RA or declination only when the circle reaches over that edge. Cells live in an
// open-addressing hash of typed arrays; each cell heads a linked list of entries. When an
// object's mean position moves into another cell it gets a second entry there (the old one
// still points at the object and is harmless: distances use the current position).

const EMPTY = -1;

// Memory layout: a query touches, per cell, one hash slot and, per candidate, one entry and
// one object, so each of those is one record in one array (one cache line to fetch, where
// separate arrays per field cost a miss per field):
//   cells: [zone, RA cell, head entry, unused] per hash slot,
//   entries: [object, next entry] per entry,
//   objects: [ra, dec, last image, unused] per object (doubles; image IDs are exact in them).
const CELL = 4;
const OBJ = 4;

/** Objects by position, for nearest-neighbour matching within a radius. */
export class MatchGrid {
  readonly cell: number;
  private readonly zones: number;
  private readonly raCells: Int32Array;
  private cells: Int32Array;
  private mask: number;
  private used = 0;
  private entries: Int32Array;
  private nEntries = 0;
  private objects: Float64Array;
  // The cell (zone, RA cell) each object was last linked into.
  private home: Int32Array;
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
    // Slots for as many cells as objects expected (the hash grows past half full): there are
    // fewer occupied cells than objects, and every slot is written here (-1), so a table
    // twice the size cost twice the page faults and filling for nothing.
    let size = 1024;
    while (size < expectedObjects) size *= 2;
    this.cells = newCells(size);
    this.mask = size - 1;
    const n = Math.max(16, expectedObjects);
    this.entries = new Int32Array(2 * n);
    this.objects = new Float64Array(OBJ * n);
    this.home = new Int32Array(2 * n);
  }

  /** Objects added. */
  get size(): number {
    return this.count;
  }

  /** The current position of an object (degrees). */
  raOf(obj: number): number {
    return this.objects[OBJ * obj];
  }

  /** The current declination of an object (degrees). */
  decOf(obj: number): number {
    return this.objects[OBJ * obj + 1];
  }

  /** The last image that claimed an object (0: none). */
  claimedBy(obj: number): number {
    return this.objects[OBJ * obj + 2];
  }

  /** Marks an object as claimed by `image` (an unsigned 32-bit ID; 0 clears the claim). */
  claim(obj: number, image: number): void {
    this.objects[OBJ * obj + 2] = image;
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

  // The hash slot (index of its record) of a cell, or of the empty slot where it would go.
  // Runs of 8 RA cells of a zone hash to 8 adjacent slots (two cache lines), so a look-up's
  // neighbouring cells, and the next detections' (catalogues come in patches of sky), are
  // mostly in lines already fetched (bench match CPU ~0.1 s less than a hash per cell).
  // The same hash is written out in nearest().
  private slot(z: number, r: number): number {
    const cells = this.cells;
    let h = (Math.imul(z, 0x9e3779b1) ^ Math.imul((r >>> 3) + 0x27d4eb2f, 0x85ebca77)) >>> 0;
    h = (((h ^ (h >>> 15)) << 3) | (r & 7)) & this.mask;
    for (;;) {
      const kz = cells[CELL * h];
      if (kz === EMPTY || (kz === z && cells[CELL * h + 1] === r)) return CELL * h;
      h = (h + 1) & this.mask;
    }
  }

  private growHash(): void {
    const old = this.cells;
    const size = (old.length / CELL) * 2;
    this.cells = newCells(size);
    this.mask = size - 1;
    for (let i = 0; i < old.length; i += CELL) {
      if (old[i] === EMPTY) continue;
      const s = this.slot(old[i], old[i + 1]);
      this.cells[s] = old[i];
      this.cells[s + 1] = old[i + 1];
      this.cells[s + 2] = old[i + 2];
    }
  }

  private growObjects(): void {
    const objects = new Float64Array(this.objects.length * 2);
    objects.set(this.objects);
    this.objects = objects;
    const home = new Int32Array(this.home.length * 2);
    home.set(this.home);
    this.home = home;
  }

  private link(obj: number, z: number, r: number): void {
    if (this.used * 2 >= this.cells.length / CELL) this.growHash();
    const s = this.slot(z, r);
    if (this.cells[s] === EMPTY) {
      this.cells[s] = z;
      this.cells[s + 1] = r;
      this.used++;
    }
    if (2 * this.nEntries === this.entries.length) {
      const a = new Int32Array(this.entries.length * 2);
      a.set(this.entries);
      this.entries = a;
    }
    const e = this.nEntries++;
    this.entries[2 * e] = obj;
    this.entries[2 * e + 1] = this.cells[s + 2];
    this.cells[s + 2] = e;
    this.home[2 * obj] = z;
    this.home[2 * obj + 1] = r;
  }

  /** Adds an object at a position; returns its number (0, 1, 2... in order of adding). */
  add(ra: number, dec: number): number {
    const obj = this.count++;
    if (OBJ * obj === this.objects.length) this.growObjects();
    this.objects[OBJ * obj] = ra;
    this.objects[OBJ * obj + 1] = dec;
    this.objects[OBJ * obj + 2] = 0;
    const z = this.zoneOf(dec);
    this.link(obj, z, this.raCellOf(z, ra));
    return obj;
  }

  /** Moves an object (its mean changed); indexes it in its new cell if it left the old one. */
  move(obj: number, ra: number, dec: number): void {
    this.objects[OBJ * obj] = ra;
    this.objects[OBJ * obj + 1] = dec;
    const z = this.zoneOf(dec);
    const r = this.raCellOf(z, ra);
    if (z !== this.home[2 * obj] || r !== this.home[2 * obj + 1]) this.link(obj, z, r);
  }

  /**
   * The nearest object within `radius` degrees of a position that `image` has not claimed
   * yet (one object per detection of an image); -1 if none.
   */
  nearest(ra: number, dec: number, radius: number, image: number): number {
    const cells = this.cells;
    const entries = this.entries;
    const objects = this.objects;
    const mask = this.mask;
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
        let h = (Math.imul(z, 0x9e3779b1) ^ Math.imul((r >>> 3) + 0x27d4eb2f, 0x85ebca77)) >>> 0;
        h = (((h ^ (h >>> 15)) << 3) | (r & 7)) & mask;
        let e = EMPTY;
        for (;;) {
          const kz = cells[CELL * h];
          if (kz === EMPTY) break;
          if (kz === z && cells[CELL * h + 1] === r) { e = cells[CELL * h + 2]; break; }
          h = (h + 1) & mask;
        }
        for (; e !== EMPTY; e = entries[2 * e + 1]) {
          const o = entries[2 * e];
          const p = OBJ * o;
          if (objects[p + 2] === image) continue;
          let dra = objects[p] - ra;
          if (dra > 180) dra -= 360; else if (dra < -180) dra += 360;
          dra *= cosd;
          const ddec = objects[p + 1] - dec;
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

function newCells(size: number): Int32Array {
  const cells = new Int32Array(CELL * size);
  for (let i = 0; i < cells.length; i += CELL) {
    cells[i] = EMPTY;
    cells[i + 2] = EMPTY;
  }
  return cells;
}
