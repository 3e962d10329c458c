import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withTempDir } from '../common/index.ts';
import { MANIFEST_FILE, simulateSurvey, type SurveyOptions } from './index.ts';

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
