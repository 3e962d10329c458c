import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withTempDir } from '../common/index.ts';
import { Header, padToBlock, sumWords } from '../fits/index.ts';
import { MANIFEST_FILE, simulateSurvey, type SurveyOptions } from './index.ts';
import { CMF_PS1_V5, TRUTH_LAYOUT } from './cmf-layout.ts';
import { FitsStream, emptyImageHeader, fileHeader, headerBytes, tableHeader, zeroPadding } from './fits-out.ts';

const SMALL = { exposures: 1, stacks: 0, density: 0.01 } as const;
const code = (c: string) => (e: Error & { code?: string }) => {
  assert.equal(e.code, c, e.message);
  assert.ok(e.message.length > 20);
  return true;
};

test('bad arguments are refused with a stable code before anything is written', async () => {
  await withTempDir(async (root) => {
    const out = join(root, 'survey');
    const cases: [Partial<SurveyOptions>, string][] = [
      [{ ra: [150, 150] }, 'sim_bad_box'],
      [{ ra: [156, 150] }, 'sim_bad_box'],
      [{ dec: [-95, 0] }, 'sim_bad_box'],
      [{ dec: [0, 91] }, 'sim_bad_box'],
      [{ ra: [-1, 3] }, 'sim_bad_box'],
      [{ filters: 'grq' }, 'sim_bad_filter'],
      [{ filters: '' }, 'sim_bad_filter'],
      [{ exposures: 0 }, 'sim_bad_count'],
      [{ exposures: -3 }, 'sim_bad_count'],
      [{ exposures: 2.5 }, 'sim_bad_count'],
      [{ stacks: -1 }, 'sim_bad_count'],
      [{ seed: -1 }, 'sim_bad_seed'],
      [{ density: 0 }, 'sim_bad_density'],
      [{ density: Number.NaN }, 'sim_bad_density'],
      [{ injectDefects: 'truncated-smf,bit-rot' }, 'sim_bad_defect'],
      [{ injectDefects: 'nan-coords:5' }, 'sim_too_many_defects'],
      [{ stacks: 5000 }, 'sim_too_many_stacks'],
      [{ out: '' }, 'sim_no_output'],
    ];
    for (const [bad, expected] of cases) {
      await assert.rejects(simulateSurvey({ out, ...SMALL, ...bad }), code(expected), JSON.stringify(bad));
    }
    assert.deepEqual(await readdir(root), []);
  });
});

test('an unwritable place and an existing non-survey directory are refused; --force replaces it', async () => {
  await withTempDir(async (root) => {
    await writeFile(join(root, 'a-file'), 'x');
    await assert.rejects(simulateSurvey({ out: join(root, 'a-file', 'survey'), ...SMALL }), code('sim_unwritable'));
    await assert.rejects(simulateSurvey({ out: join(root, 'no', 'such', 'survey'), ...SMALL }), code('sim_unwritable'));
    await assert.rejects(simulateSurvey({ out: join(root, 'a-file'), ...SMALL }), code('sim_out_exists'));
    const mine = join(root, 'mine');
    await mkdir(mine);
    await writeFile(join(mine, 'notes.txt'), 'precious');
    await assert.rejects(simulateSurvey({ out: mine, ...SMALL }), code('sim_out_exists'));
    assert.equal(await readFile(join(mine, 'notes.txt'), 'utf8'), 'precious');
    await simulateSurvey({ out: mine, ...SMALL, force: true });
    assert.ok((await readdir(mine)).includes(MANIFEST_FILE));
    assert.ok(!(await readdir(mine)).includes('notes.txt'));
    assert.deepEqual((await readdir(root)).sort(), ['a-file', 'mine']);
  });
});

test('a survey replaces an old survey and the leftovers of a killed run; an aborted run leaves nothing', async () => {
  await withTempDir(async (root) => {
    const out = join(root, 'survey');
    await simulateSurvey({ out, ...SMALL, seed: 1 });
    const leftover = join(root, 'survey.incomplete-deadbeef');
    await mkdir(leftover);
    await writeFile(join(leftover, '.incomplete'), '');
    const { manifest } = await simulateSurvey({ out, ...SMALL, seed: 2 });
    assert.equal(manifest.seed, 2);
    assert.equal(JSON.parse(await readFile(join(out, MANIFEST_FILE), 'utf8')).seed, 2);
    assert.deepEqual(await readdir(root), ['survey']);

    const controller = new AbortController();
    const fresh = join(root, 'fresh');
    const progress = { update: () => controller.abort(), finish: () => {} };
    await assert.rejects(simulateSurvey({ out: fresh, exposures: 3, stacks: 0, density: 0.01, signal: controller.signal, progress }), (e: Error) => e.name === 'AbortError');
    assert.deepEqual(await readdir(root), ['survey']);
  });
});

test('a FitsStream stages HDUs of every size across its staging buffers: the file is every HDU in order, each where writeHdu said', async () => {
  await withTempDir(async (root) => {
    const path = join(root, 'mixed.fits');
    const stream = await FitsStream.create(path);
    const expected: Uint8Array[] = [];
    const starts: [number, number][] = [];
    let at = 0;
    const add = (head: Uint8Array, data: Uint8Array | null, bytes: number): void => {
      expected.push(head);
      if (bytes > 0) expected.push(data!.subarray(0, padToBlock(bytes)));
      starts.push([at + head.length, bytes]);
      at += head.length + padToBlock(bytes);
    };
    const primary = (): Header => fileHeader(new Header().set('ORIGIN', 'TEST', 'test'));
    add(headerBytes(primary(), 0), null, 0);
    const got: number[] = [await stream.writeHdu(primary(), null, 0)];
    // Tables of 1 to 40,000 rows (16 B to 9.3 MB) between image headers: small ones share a
    // staging buffer, the run of 150-row tables fills one, the largest spans three.
    const sizes = [1, 3, 2000, 7, ...Array.from({ length: 60 }, () => 150), 1500, 2, 0, 40_000, 250, 900, 5];
    for (const [i, n] of sizes.entries()) {
      const layout = i % 3 === 2 ? TRUTH_LAYOUT : CMF_PS1_V5;
      const data = new Uint8Array(padToBlock(n * layout.rowBytes) + 2880);
      for (let b = 0; b < n * layout.rowBytes; b++) data[b] = (b * 31 + i) & 0xff;
      zeroPadding(data, n * layout.rowBytes);
      const image = (): Header => emptyImageHeader(`T${i}.hdr`, new Header().set('INDEX', i, 'which'));
      add(headerBytes(image(), 0), null, 0);
      got.push(await stream.writeHdu(image(), null, 0));
      const extra = (): Header => new Header().set('EXTTYPE', layout.name, 'layout');
      add(tableHeader(layout, n, `T${i}.psf`, extra()).bytes(n > 0 ? sumWords(data.subarray(0, n * layout.rowBytes)) : 0), data, n * layout.rowBytes);
      got.push(await stream.writeHdu(tableHeader(layout, n, `T${i}.psf`, extra()), data, n * layout.rowBytes));
    }
    await stream.close();
    const file = await readFile(path);
    assert.equal(stream.position, file.length);
    assert.equal(file.length, at);
    assert.deepEqual(got, starts.map((s) => s[0]));
    assert.ok(Buffer.concat(expected).equals(file), 'the file holds the HDUs as formatted, in order');
  });
});
