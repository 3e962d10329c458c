import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MatchGrid } from './match-grid.ts';
import { uniform } from './test-support.ts';

test('nearest matches a brute-force search, across RA 0, near the poles, with moves and claimed objects', () => {
  const u = uniform(9);
  for (const [ra0, dec0] of [[0, 0], [180, 89.99], [90, -89.995], [359.9995, 45]]) {
    const radius = 1 / 3600;
    const grid = new MatchGrid(radius, 16);
    const n = 3000;
    const pts: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      const dec = Math.max(-90, Math.min(90, dec0 + (u() - 0.5) * 0.01));
      const ra = (ra0 + ((u() - 0.5) * 0.01) / Math.max(1e-3, Math.cos(dec * Math.PI / 180)) + 360) % 360;
      pts.push([ra, dec]);
      assert.equal(grid.add(ra, dec), i);
    }
    // Move some objects by up to a radius; claim some for image 7.
    for (let i = 0; i < n; i += 7) {
      const [ra, dec] = pts[i];
      pts[i] = [(ra + (u() - 0.5) * radius + 360) % 360, Math.max(-90, Math.min(90, dec + (u() - 0.5) * radius))];
      grid.move(i, pts[i][0], pts[i][1]);
    }
    for (let i = 0; i < n; i += 11) grid.claim(i, 7);
    for (let q = 0; q < 2000; q++) {
      const [pra, pdec] = pts[Math.floor(u() * n)];
      const ra = (pra + (u() - 0.5) * 2 * radius / Math.max(1e-3, Math.cos(pdec * Math.PI / 180)) + 360) % 360;
      const dec = Math.max(-90, Math.min(90, pdec + (u() - 0.5) * 2 * radius));
      const image = q % 2 === 0 ? 7 : 8;
      let best = -1;
      let bestD = radius * radius;
      const cosd = Math.cos(dec * Math.PI / 180);
      pts.forEach(([a, d], i) => {
        if (grid.claimedBy(i) === image) return;
        let dra = a - ra;
        if (dra > 180) dra -= 360; else if (dra < -180) dra += 360;
        const dd = (dra * cosd) ** 2 + (d - dec) ** 2;
        if (dd < bestD || (dd === bestD && best < 0)) { bestD = dd; best = i; }
      });
      assert.equal(grid.nearest(ra, dec, radius, image), best, `query ${q} at ${ra},${dec}`);
    }
  }
});
