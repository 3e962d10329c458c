import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { withTempDir } from '../common/index.ts';
import { FitsFile, scanHdus } from '../fits/index.ts';
import { simulateSurvey } from '../sim/index.ts';
import { readCatalogue, type Catalogue } from './catalogue.ts';
import { defaultPhotcodes, PhotcodeTable } from './photcodes.ts';

function sameCatalogue(a: Catalogue, b: Catalogue, what: string): void {
  assert.deepEqual(a.images, b.images, `${what}: images`);
  assert.equal(a.detections.length, b.detections.length, `${what}: detections`);
  for (const c of a.detections.columns) {
    const x = a.detections.col(c.name).subarray(0, a.detections.length);
    const y = b.detections.col(c.name).subarray(0, b.detections.length);
    assert.deepEqual(new Uint8Array(x.buffer, x.byteOffset, x.byteLength), new Uint8Array(y.buffer, y.byteOffset, y.byteLength), `${what}: ${c.name}`);
  }
}

// The byte offset of the card of `keyword` in the header of HDU `extname`.
async function cardAt(path: string, extname: string, keyword: string): Promise<number> {
  const f = await FitsFile.open(path);
  try {
    const h = f.find(extname);
    const i = h.header.indexOf(keyword);
    assert.ok(i >= 0, `${keyword} in ${extname}`);
    // Header cards start at the HDU's header, one per 80 bytes (no long strings here).
    const headerStart = h.dataStart - Math.ceil(((h.header.cards.length + 1) * 80) / 2880) * 2880;
    const card = Buffer.from(await f.read(headerStart + 80 * i, 80)).toString('latin1');
    assert.ok(card.startsWith(keyword), card);
    return headerStart + 80 * i;
  } finally {
    await f.close();
  }
}

test('catalogue scan: the same catalogue as through the FITS reader, every keyword read alike; anything unusual is left to the reader', async () => {
  await withTempDir(async (dir) => {
    const survey = join(dir, 'survey');
    const { manifest: m } = await simulateSurvey({ out: survey, exposures: 2, stacks: 1, density: 0.02, seed: 5 });
    const photcodes = new PhotcodeTable(defaultPhotcodes());
    const files = [...m.exposures.map((e) => join(survey, e.smf)), ...m.stacks.map((s) => join(survey, s.cmf))];
    for (const path of files) {
      const scanned = await scanHdus(path);
      assert.ok(scanned, `${path} scanned`);
      // Every keyword of every header gives the reader's value.
      const f = await FitsFile.open(path);
      try {
        assert.equal(scanned.length, f.hdus.length);
        f.hdus.forEach((h, i) => {
          const s = scanned[i];
          assert.equal(s.dataStart, h.dataStart);
          assert.equal(s.extname, h.extname);
          assert.equal(s.rows, h.kind === 'bintable' ? h.rows : undefined);
          for (const c of h.header.cards) assert.deepEqual(s.header.get(c.keyword), h.header.get(c.keyword), `${h.extname} ${c.keyword}`);
          assert.equal(s.header.get('NO_SUCH'), undefined);
        });
      } finally {
        await f.close();
      }
      sameCatalogue(await readCatalogue(path, photcodes), await readCatalogue(path, photcodes, { scan: false }), path);
    }
    const smf = files[0];
    const original = await readFile(smf);
    const at = await cardAt(smf, 'XY11.hdr', 'EXP_ID');
    // A lower-case keyword (legal; looked up otherwise): left to the reader, which reads it alike.
    const lower = Buffer.from(original);
    lower.write('exp_id', at, 'latin1');
    await writeFile(smf, lower);
    assert.equal(await scanHdus(smf), undefined);
    sameCatalogue(await readCatalogue(smf, photcodes), await readCatalogue(smf, photcodes, { scan: false }), 'lower-case keyword');
    // A byte that is not printable: the reader's error.
    const damaged = Buffer.from(original);
    damaged[at + 3] = 0x07;
    await writeFile(smf, damaged);
    assert.equal(await scanHdus(smf), undefined);
    await assert.rejects(readCatalogue(smf, photcodes), (e: Error & { code?: string }) => e.code === 'dvo_bad_catalogue' && /not printable ASCII/.test(e.message));
    // Cut short: the reader's error.
    await writeFile(smf, original.subarray(0, original.length - 5000));
    assert.equal(await scanHdus(smf), undefined);
    await assert.rejects(readCatalogue(smf, photcodes), (e: Error & { code?: string }) => e.code === 'dvo_bad_catalogue' && /bytes short/.test(e.message));
    // A long string (CONTINUE): left to the reader.
    const long = Buffer.from(original);
    long.write(`CONTINUE  'x'${' '.repeat(67)}`, at, 'latin1');
    await writeFile(smf, long);
    assert.equal(await scanHdus(smf), undefined);
    await writeFile(smf, original);
    assert.ok(await scanHdus(smf));
  });
});

test('catalogue read: rows converted by code made per layout equal the column-by-column conversion, to the bit; a bad row still gets its error', async () => {
  await withTempDir(async (dir) => {
    const survey = join(dir, 'survey');
    const { manifest: m } = await simulateSurvey({ out: survey, exposures: 2, stacks: 1, density: 0.02, seed: 9, injectDefects: 'nan-coords' });
    const photcodes = new PhotcodeTable(defaultPhotcodes());
    const files = [...m.exposures.map((e) => join(survey, e.smf)), ...m.stacks.map((s) => join(survey, s.cmf))];
    const bad = m.defects.find((d) => d.kind === 'nan-coords')!;
    for (const path of files) {
      if (path === join(survey, bad.file)) {
        for (const fused of [true, false]) {
          await assert.rejects(readCatalogue(path, photcodes, { fused }), (e: Error & { code?: string }) =>
            e.code === 'dvo_bad_coordinates' && e.message.includes(`row ${bad.rows![0] + 1} `) && e.message.includes(bad.chip!));
        }
        continue;
      }
      sameCatalogue(await readCatalogue(path, photcodes), await readCatalogue(path, photcodes, { fused: false }), path);
    }
  });
});
