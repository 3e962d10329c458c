// Header cards shared by the smf and cmf writers, added without look-ups (each keyword once).
import { Header, type HeaderValue } from '../fits/index.ts';
import type { TanWcs } from './wcs.ts';

/** Appends a card; numbers that must read back as floats (`45.0`) pass `float`. */
export function card(h: Header, keyword: string, value: HeaderValue, comment?: string, float = false): Header {
  return h.add({ keyword, value, ...(comment !== undefined ? { comment } : {}), ...(float ? { float: true } : {}) });
}

/** Appends a float card rounded to `digits` decimals (so headers stay short and stable). */
export function fcard(h: Header, keyword: string, value: number, digits: number, comment?: string): Header {
  const f = 10 ** digits;
  return card(h, keyword, Math.round(value * f) / f, comment, true);
}

/** Appends a tangent-plane WCS (CTYPE, CRVAL, CRPIX, CD). */
export function wcsCards(h: Header, w: TanWcs): Header {
  card(h, 'CTYPE1', 'RA---TAN', 'gnomonic projection');
  card(h, 'CTYPE2', 'DEC--TAN', 'gnomonic projection');
  card(h, 'RADESYS', 'ICRS', 'celestial frame');
  card(h, 'CRVAL1', w.crval1, '[deg] RA of the tangent point', true);
  card(h, 'CRVAL2', w.crval2, '[deg] Dec of the tangent point', true);
  card(h, 'CRPIX1', w.crpix1, 'pixel of the tangent point (x)', true);
  card(h, 'CRPIX2', w.crpix2, 'pixel of the tangent point (y)', true);
  card(h, 'CD1_1', w.cd11, '[deg/pixel]', true);
  card(h, 'CD1_2', w.cd12, '[deg/pixel]', true);
  card(h, 'CD2_1', w.cd21, '[deg/pixel]', true);
  card(h, 'CD2_2', w.cd22, '[deg/pixel]', true);
  // At a tangent point on the north pole the FITS default LONPOLE is 0, where everywhere
  // else it is 180, as wcs.ts projects: say so, or readers turn the plane by 180°.
  if (w.crval2 >= 90) card(h, 'LONPOLE', 180, '[deg] native longitude of the celestial pole', true);
  return h;
}

/** A WCS in the manifest's spelling. */
export function manifestWcs(w: TanWcs): { crval1: number; crval2: number; crpix1: number; crpix2: number; cd1_1: number; cd1_2: number; cd2_1: number; cd2_2: number } {
  return { crval1: w.crval1, crval2: w.crval2, crpix1: w.crpix1, crpix2: w.crpix2, cd1_1: w.cd11, cd1_2: w.cd12, cd2_1: w.cd21, cd2_2: w.cd22 };
}
