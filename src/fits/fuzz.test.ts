// Damaged FITS files give data or a typed error: never another exception, never a hang.
// The engine (src/fits/testing/fuzz-engine.ts) is shared with `npm run fuzz`, which runs
// many more cases; a failure here prints the seed and case, and the command that reruns it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCorpus, exercise, formatFailure, makeCase, runFuzz } from './testing/fuzz-engine.ts';
import { fitsverify } from './testing/external.ts';
import { verifyFits } from './verify.ts';

const dir = await mkdtemp(join(tmpdir(), 'fits-fuzz-test-'));
after(async () => { await rm(dir, { recursive: true, force: true }); });

const SEED = 20250611;
const CASES = 3000;

test('the corpus is valid: our reader, verifyFits and fitsverify accept every file undamaged', async () => {
  const corpus = await buildCorpus(join(dir, 'corpus-check'));
  const kinds = new Set<string>();
  const forms = new Set<string>();
  for (const f of corpus) {
    const outcome = await exercise(f.bytes, f.name);
    assert.deepEqual(outcome, { result: 'read', codes: [], failures: [] }, f.name);
    const path = join(dir, f.name);
    await writeFile(path, f.bytes);
    const ours = await verifyFits(path);
    assert.equal(ours.errors, 0, `${f.name}: ${ours.problems.map((p) => p.message).join('; ')}`);
    const theirs = await fitsverify(path);
    assert.equal(theirs.errors, 0, `${f.name}: ${theirs.output}`);
    for (const h of f.hdus) {
      kinds.add(h.kind);
      for (const c of h.cards) {
        if (/^(ZCTYP|TFORM)\d+$/.test(c.keyword)) forms.add(Buffer.from(f.bytes.subarray(c.offset + 10, c.offset + 30)).toString('latin1').replace(/['\s]/g, '').replace(/\(.*$/, ''));
      }
    }
  }
  // What the damage is applied to: every kind of HDU and column the readers handle.
  for (const k of ['primary', 'image', 'bintable', 'compressed-table']) assert.ok(kinds.has(k), `corpus has a ${k} HDU`);
  for (const form of ['1PJ', '1PD', '1PA', '1QD', '1QA', '1QB', '12A', '11X', 'RICE_1', 'GZIP_1', 'GZIP_2']) {
    assert.ok(forms.has(form), `corpus has ${form} (has ${[...forms].join(' ')})`);
  }
  assert.ok(corpus.some((f) => f.hdus.length >= 5), 'corpus has a file of five HDUs or more');
  assert.ok(corpus.some((f) => f.hdus.some((h) => h.cards.some((c) => c.keyword === 'THEAP'))), 'corpus has a heap placed by THEAP');
});

test('cases are reproducible from (seed, case) alone, and damage the file', async () => {
  const corpus = await buildCorpus(join(dir, 'corpus-repro'));
  let changed = 0;
  for (let i = 0; i < 300; i++) {
    const a = makeCase(corpus, SEED, i);
    const b = makeCase(corpus, SEED, i);
    assert.deepEqual(b.mutations, a.mutations, `case ${i}`);
    assert.deepEqual(b.bytes, a.bytes, `case ${i}`);
    assert.ok(a.mutations.length >= 1, `case ${i} is damaged`);
    const base = corpus.find((f) => f.name === a.base)!;
    if (a.bytes.length !== base.bytes.length || a.bytes.some((x, k) => x !== base.bytes[k])) changed++;
  }
  // A few pieces of damage may write what was there already (a keyword set to its own value).
  assert.ok(changed >= 285, `${changed} of 300 cases differ from their base file`);
  assert.notDeepEqual(makeCase(corpus, SEED + 1, 0).bytes, makeCase(corpus, SEED, 0).bytes);
});

test(`${CASES} damaged files: data or typed errors, never a crash or a hang`, async () => {
  const report = await runFuzz({ seed: SEED, cases: CASES, workers: 2, dir: join(dir, 'run') });
  assert.equal(report.failures.length, 0, `\n${report.failures.map(formatFailure).join('\n')}`);
  const { read, rejected, budget } = report.results;
  assert.equal(read + rejected + budget, CASES);
  // The damage must reach the error paths, and not only the first check of the header.
  assert.ok(rejected > CASES * 0.3, `rejected ${rejected}`);
  assert.ok(read > CASES * 0.05, `read ${read}`);
  const codes = Object.keys(report.codes);
  assert.ok(codes.length >= 12, `codes raised: ${codes.join(', ')}`);
  for (const code of ['fits_truncated', 'fits_bad_tile', 'fits_bad_heap', 'fits_bad_tform', 'fits_bad_keyword', 'fits_header_no_end']) {
    assert.ok(code in report.codes, `${code} among ${codes.join(', ')}`);
  }
  for (const kind of ['keyword', 'add-keyword', 'cards', 'header-bytes', 'data-bytes', 'truncate', 'shift', 'append', 'heap-descriptor', 'tile']) {
    assert.ok((report.mutations[kind] ?? 0) > 20, `damage ${kind} applied ${report.mutations[kind] ?? 0} times`);
  }
});

test('the harness reports an untyped error and a hang with their seed and case, and carries on', async () => {
  const report = await runFuzz({
    seed: 5, cases: 12, workers: 2, timeoutMs: 2000, verifyEvery: 0, dir: join(dir, 'self'),
    selfTest: { crashAt: [3], hangAt: [6] },
  });
  assert.deepEqual(report.failures.map((f) => [f.index, f.kind]), [[3, 'crash'], [6, 'hang']]);
  const [crash, hang] = report.failures;
  assert.match(crash.details.join('\n'), /TypeError: deliberate crash/);
  assert.match(formatFailure(crash), /^seed 5 case 3 \(crash\) on \S+\.fits: .+\n[\s\S]*rerun: node scripts\/fuzz\.ts --seed 5 --first 3 --cases 1$/);
  assert.match(formatFailure(hang), /seed 5 case 6 \(hang\)[\s\S]*no result after 2000 ms/);
  // Every other case ran, the ones after the hang included.
  const { read, rejected, budget } = report.results;
  assert.equal(read + rejected + budget, 11);
});

// Cases the fuzzer once found failing, kept so they stay fixed: (seed, case, what it was).
const REGRESSIONS: readonly [number, number, string][] = [
  [7, 1767, 'TFIELDS = 4294967296 in a compressed table hung the column loop'],
];

test('past fuzz failures stay fixed', async () => {
  for (const [seed, index, what] of REGRESSIONS) {
    const report = await runFuzz({ seed, cases: 1, first: index, workers: 1, timeoutMs: 20_000, dir: join(dir, `regression-${seed}-${index}`) });
    assert.equal(report.failures.length, 0, `${what}:\n${report.failures.map(formatFailure).join('\n')}`);
  }
});
