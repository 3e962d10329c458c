// Assertions the FITS tests share.
import assert from 'node:assert/strict';
import { FitsError } from '../errors.ts';

/** An `assert.throws`/`rejects` predicate: a FitsError with this code whose message matches every pattern. */
export function fitsError(code: string, ...parts: RegExp[]) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof FitsError, String(e));
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.match(e.message, p);
    return true;
  };
}
