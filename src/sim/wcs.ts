// The gnomonic (tangent-plane, FITS "TAN") projection: every WCS the simulator writes is a
// tangent plane (a chip's, a skycell's), which is enough for catalogue work at this scale.

const DEG = Math.PI / 180;

/** Standard coordinates (ξ east, η north, degrees) of a sky position about a tangent point. */
export interface TangentPoint {
  readonly xi: number;
  readonly eta: number;
}

/** Projects (ra, dec) onto the plane tangent at (ra0, dec0); degrees in and out. Null behind the plane. */
export function project(ra: number, dec: number, ra0: number, dec0: number): TangentPoint | null {
  const d = dec * DEG;
  const d0 = dec0 * DEG;
  const da = (ra - ra0) * DEG;
  const cosd = Math.cos(d);
  const cosc = Math.sin(d0) * Math.sin(d) + Math.cos(d0) * cosd * Math.cos(da);
  if (cosc <= 0) return null;
  return {
    xi: (cosd * Math.sin(da)) / cosc / DEG,
    eta: (Math.cos(d0) * Math.sin(d) - Math.sin(d0) * cosd * Math.cos(da)) / cosc / DEG,
  };
}

/** The sky position (degrees, ra in [0, 360)) of standard coordinates (ξ, η) about (ra0, dec0). */
export function deproject(xi: number, eta: number, ra0: number, dec0: number): { ra: number; dec: number } {
  const x = xi * DEG;
  const y = eta * DEG;
  const d0 = dec0 * DEG;
  const denom = Math.cos(d0) - y * Math.sin(d0);
  const ra = ra0 + Math.atan2(x, denom) / DEG;
  const dec = Math.atan2(Math.sin(d0) + y * Math.cos(d0), Math.hypot(x, denom)) / DEG;
  return { ra: ((ra % 360) + 360) % 360, dec };
}

/** Angular distance between two sky positions, degrees (haversine: exact for small angles too). */
export function separation(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const s1 = Math.sin(((dec2 - dec1) * DEG) / 2);
  const s2 = Math.sin(((ra2 - ra1) * DEG) / 2);
  const h = s1 * s1 + Math.cos(dec1 * DEG) * Math.cos(dec2 * DEG) * s2 * s2;
  return (2 * Math.asin(Math.min(1, Math.sqrt(h)))) / DEG;
}

/**
 * A FITS tangent-plane WCS: pixel (x, y), FITS convention (the first pixel's centre is 1.0),
 * to standard coordinates through CD (degrees per pixel), then to the sky about CRVAL.
 */
export interface TanWcs {
  readonly crval1: number;
  readonly crval2: number;
  readonly crpix1: number;
  readonly crpix2: number;
  readonly cd11: number;
  readonly cd12: number;
  readonly cd21: number;
  readonly cd22: number;
}

/** The sky position of a pixel. */
export function pixelToSky(wcs: TanWcs, x: number, y: number): { ra: number; dec: number } {
  const dx = x - wcs.crpix1;
  const dy = y - wcs.crpix2;
  return deproject(wcs.cd11 * dx + wcs.cd12 * dy, wcs.cd21 * dx + wcs.cd22 * dy, wcs.crval1, wcs.crval2);
}

/** The pixel of a sky position (null when it is behind the tangent plane). */
export function skyToPixel(wcs: TanWcs, ra: number, dec: number): { x: number; y: number } | null {
  const p = project(ra, dec, wcs.crval1, wcs.crval2);
  if (!p) return null;
  const det = wcs.cd11 * wcs.cd22 - wcs.cd12 * wcs.cd21;
  return {
    x: wcs.crpix1 + (wcs.cd22 * p.xi - wcs.cd12 * p.eta) / det,
    y: wcs.crpix2 + (-wcs.cd21 * p.xi + wcs.cd11 * p.eta) / det,
  };
}
