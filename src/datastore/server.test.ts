import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RemoteError } from '../common/index.ts';
import { openDatabase, testEngines } from '../db/index.ts';
import {
  DATASTORE_MIGRATIONS, DatastoreClient, DatastoreError, FILESET_BODY_TYPE, parseFilesetIndex, parseProductIndex,
  parseRootIndex, startDatastoreServer,
} from './index.ts';
import { bytesOf, md5, rawRequest, stalledUpload, waitFor, withDatastore } from './test-support.ts';

const remote = (status: number, code?: string) => (e: unknown) =>
  e instanceof RemoteError && e.status === status && (code === undefined || e.code === code);

const product = { name: 'PSPS_test', type: 'IPP-PSPS', description: 'ippToPsps test batches' };

for (const engine of testEngines()) {
  describe(`datastore server on ${engine.name}`, { skip: engine.skip }, () => {
    it('adds, lists and shows products; refuses a taken name and bad fields with the reason', () => withDatastore(engine, {}, async ({ server }) => {
      const ds = new DatastoreClient({ url: server.url });
      const added = await ds.addProduct(product);
      assert.equal(added.name, 'PSPS_test');
      assert.equal(added.filesets, 0);
      assert.equal(added.lastFileset, null);
      await ds.addProduct({ name: 'A_other', type: 'table', description: 'another' });
      assert.deepEqual((await ds.products()).map((p) => p.name), ['PSPS_test', 'A_other']);
      await assert.rejects(ds.addProduct(product), remote(409, 'product_exists'));
      await assert.rejects(ds.addProduct({ ...product, name: '../etc' }), (e: unknown) => remote(400, 'name_invalid')(e) && /slash/.test((e as Error).message));
      await assert.rejects(ds.addProduct({ ...product, name: 'x', description: 'a|b' }), remote(400, 'description_invalid'));
      await assert.rejects(ds.addProduct({ ...product, name: 'x', type: 'has space' }), remote(400, 'type_invalid'));
      await assert.rejects(ds.product('nope'), remote(404, 'product_not_found'));
      const root = parseRootIndex(await ds.textIndex());
      assert.deepEqual(root.map((p) => [p.name, p.lastFileset, p.type]), [['PSPS_test', null, 'IPP-PSPS'], ['A_other', null, 'table']]);
      assert.ok((await stat(join(server.root, 'PSPS_test'))).isDirectory());
    }));

    it('publishes a fileset whole, lists it (JSON and the original text index) and serves its files with md5 and ranges', () => withDatastore(engine, {}, async ({ server, dir }) => {
      const ds = new DatastoreClient({ url: server.url });
      await ds.addProduct(product);
      const fits = bytesOf(1, 100_000);
      const path = join(dir, 'B00000001.fits');
      await writeFile(path, fits);
      const manifest = Buffer.from('<manifest/>\n');
      const published = await ds.publish('PSPS_test', 'B00000001', [{ path }, { data: manifest, name: 'manifest.xml' }], { type: 'IPP_PSPS' });
      assert.equal(published.replaced, false);
      assert.equal(published.fileCount, 2);
      assert.equal(published.bytes, fits.length + manifest.length);
      assert.deepEqual(published.files.map((f) => [f.name, f.bytes, f.md5, f.type]),
        [['B00000001.fits', fits.length, md5(fits), 'fits'], ['manifest.xml', manifest.length, md5(manifest), 'xml']]);
      // On disk, in a layout a person can read.
      assert.deepEqual((await readdir(join(server.root, 'PSPS_test', 'B00000001'))).sort(), ['B00000001.fits', 'manifest.xml']);

      const listed = await ds.filesets('PSPS_test');
      assert.deepEqual(listed.map((f) => [f.name, f.type, f.fileCount]), [['B00000001', 'IPP_PSPS', 2]]);
      const text = await ds.textIndex('PSPS_test');
      const lines = text.split('\n');
      assert.equal(lines[0], '# filesetID|time registered     |type    |');
      assert.match(lines[1], /^B00000001 {2}\|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\|IPP_PSPS\|$/);
      assert.deepEqual(parseProductIndex(text).map((f) => f.name), ['B00000001']);
      const fsIndex = await ds.textIndex('PSPS_test', 'B00000001');
      assert.equal(fsIndex.split('\n')[0], '# fileID          |bytes   |md5sum                          |type        |');
      assert.equal(fsIndex.split('\n')[1], `B00000001.fits    |100000  |${md5(fits)}|fits        |`);
      assert.deepEqual(parseFilesetIndex(fsIndex), published.files);
      const rootIndex = parseRootIndex(await ds.textIndex());
      assert.equal(rootIndex[0].lastFileset, 'B00000001');

      // Whole file: md5 header and ETag; the text URL and the JSON URL serve the same bytes.
      for (const p of ['/ds/PSPS_test/B00000001/B00000001.fits', '/products/PSPS_test/filesets/B00000001/files/B00000001.fits']) {
        const r = await rawRequest(server.url, 'GET', p);
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-md5'], md5(fits));
        assert.equal(r.headers.etag, `"${md5(fits)}"`);
        assert.ok(r.body.equals(fits));
      }
      const head = await rawRequest(server.url, 'HEAD', '/ds/PSPS_test/B00000001/B00000001.fits');
      assert.equal(head.headers['content-length'], String(fits.length));
      assert.equal(head.body.length, 0);
      // Ranges: open-ended, bounded, suffix; If-Range with another version gets the whole file.
      const part = await rawRequest(server.url, 'GET', '/ds/PSPS_test/B00000001/B00000001.fits', { range: 'bytes=99990-' });
      assert.equal(part.status, 206);
      assert.equal(part.headers['content-range'], `bytes 99990-99999/${fits.length}`);
      assert.ok(part.body.equals(fits.subarray(99990)));
      const mid = await rawRequest(server.url, 'GET', '/ds/PSPS_test/B00000001/B00000001.fits', { range: 'bytes=10-19' });
      assert.ok(mid.body.equals(fits.subarray(10, 20)));
      const suffix = await rawRequest(server.url, 'GET', '/ds/PSPS_test/B00000001/B00000001.fits', { range: 'bytes=-5' });
      assert.ok(suffix.body.equals(fits.subarray(fits.length - 5)));
      const stale = await rawRequest(server.url, 'GET', '/ds/PSPS_test/B00000001/B00000001.fits', { range: 'bytes=10-', 'if-range': '"0123"' });
      assert.equal(stale.status, 200);
      assert.equal(stale.body.length, fits.length);
      const outside = await rawRequest(server.url, 'GET', '/ds/PSPS_test/B00000001/B00000001.fits', { range: 'bytes=100000-' });
      assert.equal(outside.status, 416);
      assert.equal(outside.headers['content-range'], `bytes */${fits.length}`);

      // The client's get: every file, checked, under its own name.
      const out = join(dir, 'out');
      const got = await ds.get('PSPS_test', 'B00000001', out);
      assert.deepEqual(got.map((g) => [g.bytes, g.alreadyComplete]), [[fits.length, false], [manifest.length, false]]);
      assert.ok((await readFile(join(out, 'B00000001.fits'))).equals(fits));
      assert.deepEqual((await readdir(out)).sort(), ['B00000001.fits', 'manifest.xml']);
      // Again: the files are there and correct, nothing is fetched.
      assert.ok((await ds.get('PSPS_test', 'B00000001', out)).every((g) => g.alreadyComplete));
      await assert.rejects(ds.fileset('PSPS_test', 'B00000002'), remote(404, 'fileset_not_found'));
      await assert.rejects(ds.download('PSPS_test', 'B00000001', { ...published.files[0], name: 'nope.fits' }, join(out, 'x')), remote(404, 'file_not_found'));
    }));

    it('refuses a second publish of the same name, replaces it only when asked, and announces the replacement as new', () => withDatastore(engine, {}, async ({ server }) => {
      const ds = new DatastoreClient({ url: server.url });
      await ds.addProduct(product);
      const first = await ds.publish('PSPS_test', 'B1', [{ data: bytesOf(1, 1000), name: 'a.fits' }, { data: bytesOf(2, 10), name: 'b.fits' }]);
      await assert.rejects(ds.publish('PSPS_test', 'B1', [{ data: bytesOf(3, 1000), name: 'c.fits' }]), remote(409, 'fileset_exists'));
      const same = await ds.fileset('PSPS_test', 'B1');
      assert.deepEqual(same.files.map((f) => f.name), ['a.fits', 'b.fits']);
      assert.equal(same.type, 'IPP-PSPS', 'the fileset type defaults to the product type');
      const second = await ds.publish('PSPS_test', 'B1', [{ data: bytesOf(3, 1000), name: 'c.fits' }], { replace: true });
      assert.equal(second.replaced, true);
      assert.ok(second.id > first.id);
      const now = await ds.fileset('PSPS_test', 'B1');
      assert.deepEqual(now.files.map((f) => f.name), ['c.fits']);
      assert.deepEqual(await ds.filesets('PSPS_test', { afterId: first.id }).then((l) => l.map((f) => f.name)), ['B1']);
      // The old generation's files are gone from disk; only the new one is left.
      const dirs = await readdir(join(server.root, 'PSPS_test'));
      assert.equal(dirs.length, 1);
      assert.deepEqual(await readdir(join(server.root, 'PSPS_test', dirs[0])), ['c.fits']);
      const r = await rawRequest(server.url, 'GET', '/ds/PSPS_test/B1/c.fits');
      assert.ok(r.body.equals(bytesOf(3, 1000)));
      // Replace again: the directory name is free again or taken by a generation; either way one is kept.
      await ds.publish('PSPS_test', 'B1', [{ data: bytesOf(4, 5), name: 'd.fits' }], { replace: true });
      assert.equal((await readdir(join(server.root, 'PSPS_test'))).length, 1);
    }));

    it('refuses a wrong md5, a short or long body, a duplicate file, and sizes over the limits; nothing is left visible or on disk', () => withDatastore(engine, { limits: { maxFileBytes: 5000, maxFilesetBytes: 8000 } }, async ({ server, logLines }) => {
      const ds = new DatastoreClient({ url: server.url });
      await ds.addProduct(product);
      const data = bytesOf(7, 3000);
      await assert.rejects(ds.publish('PSPS_test', 'B1', [{ data, name: 'a.fits', md5: md5('other') }]),
        (e: unknown) => remote(400, 'md5_mismatch')(e) && /a\.fits/.test((e as Error).message));
      await assert.rejects(ds.publish('PSPS_test', 'B1', [{ data: bytesOf(1, 6000), name: 'big.fits' }]), remote(413, 'upload_too_large'));
      await assert.rejects(ds.publish('PSPS_test', 'B1', [{ data, name: 'a.fits' }, { data, name: 'b.fits' }, { data, name: 'c.fits' }]), remote(413, 'upload_too_large'));
      // A big fileset is refused by the preflight check, before its bytes are sent.
      await assert.rejects(ds.publish('PSPS_test', 'B1', [{ data: Buffer.alloc(33 * 2 ** 20), name: 'huge.fits' }]), remote(413, 'upload_too_large'));
      assert.ok(logLines.some((l) => l.includes('POST /products/PSPS_test/filesets/B1/check 413')));
      assert.equal(logLines.filter((l) => l.includes('PUT /products/PSPS_test/filesets/B1 ')).length, 3);
      const put = (body: Buffer) => rawRequest(server.url, 'PUT', '/products/PSPS_test/filesets/B1', { 'content-type': FILESET_BODY_TYPE }, body);
      const manifest = (files: object[]) => Buffer.from(`${JSON.stringify({ files })}\n`);
      const entry = { name: 'a.fits', bytes: data.length, md5: md5(data) };
      let r = await put(Buffer.concat([manifest([entry]), data.subarray(0, 100)]));
      assert.equal(r.status, 400);
      assert.equal(JSON.parse(r.body.toString()).error.code, 'upload_truncated');
      r = await put(Buffer.concat([manifest([entry]), data, Buffer.from('x')]));
      assert.equal(JSON.parse(r.body.toString()).error.code, 'upload_too_long');
      r = await put(Buffer.concat([manifest([entry, entry]), data, data]));
      assert.equal(JSON.parse(r.body.toString()).error.code, 'manifest_invalid');
      r = await put(Buffer.from('not json\n'));
      assert.equal(JSON.parse(r.body.toString()).error.code, 'manifest_invalid');
      r = await put(Buffer.concat([manifest([{ ...entry, name: '../../x' }]), data]));
      assert.equal(JSON.parse(r.body.toString()).error.code, 'name_invalid');
      assert.deepEqual(await ds.filesets('PSPS_test'), []);
      assert.deepEqual(await readdir(join(server.root, 'PSPS_test')), []);
      assert.deepEqual(await readdir(join(server.root, '.staging')), []);
      assert.equal((await ds.health()).filesets, 0);
      // After all that, a good publish goes through.
      await ds.publish('PSPS_test', 'B1', [{ data, name: 'a.fits' }]);
      assert.equal((await ds.health()).files, 1);
    }));

    it('a publisher that goes away mid-upload, or a server that stops during one, leaves nothing behind', () => withDatastore(engine, {}, async ({ server }) => {
      const ds = new DatastoreClient({ url: server.url });
      await ds.addProduct(product);
      const never = new Promise<void>(() => undefined);
      const gone = new AbortController();
      const a = stalledUpload(server.url, 'PSPS_test', 'A', bytesOf(1, 3_000_000), 1_000_000, never, gone.signal);
      a.catch(() => undefined);
      await waitFor('the upload to start', async () => (await ds.health()).uploadsInProgress === 1);
      assert.equal((await readdir(join(server.root, '.staging'))).length, 1);
      gone.abort();
      await assert.rejects(a);
      await waitFor('the upload to be dropped', async () => (await ds.health()).uploadsInProgress === 0 && (await readdir(join(server.root, '.staging'))).length === 0);
      assert.deepEqual(await ds.filesets('PSPS_test'), []);
      const b = stalledUpload(server.url, 'PSPS_test', 'B', bytesOf(2, 3_000_000), 1_000_000, never);
      b.catch(() => undefined);
      await waitFor('the second upload to start', async () => (await ds.health()).uploadsInProgress === 1);
      await server.close();
      await assert.rejects(b);
      assert.deepEqual(await readdir(join(server.root, '.staging')), []);
      assert.deepEqual(await readdir(join(server.root, 'PSPS_test')), []);
    }));

    let clock = Date.parse('2026-03-01T00:00:00Z');
    it('lists since a time, after a fileset, after an id, page by page, and hidden ones on request', () => withDatastore(engine, { now: () => new Date(clock) }, async ({ server }) => {
        const url = server.url;
        const ds = new DatastoreClient({ url });
        await ds.addProduct(product);
        for (let i = 1; i <= 25; i++) {
          clock += 60_000;
          await ds.publish('PSPS_test', `B${String(i).padStart(3, '0')}`, [{ data: bytesOf(i, 10), name: 'f.fits' }]);
        }
        const all = await ds.filesets('PSPS_test', { pageSize: 7 });
        assert.deepEqual(all.map((f) => f.name), Array.from({ length: 25 }, (_, i) => `B${String(i + 1).padStart(3, '0')}`));
        assert.ok(all.every((f, i) => i === 0 || f.id > all[i - 1].id));
        const page = await ds.filesetPage('PSPS_test', { pageSize: 10 });
        assert.equal(page.filesets.length, 10);
        assert.equal(page.more, true);
        assert.deepEqual((await ds.filesets('PSPS_test', { after: 'B020' })).map((f) => f.name), ['B021', 'B022', 'B023', 'B024', 'B025']);
        assert.deepEqual((await ds.filesets('PSPS_test', { afterId: all[22].id })).map((f) => f.name), ['B024', 'B025']);
        // B010 was registered at 00:10:00.000.
        assert.deepEqual((await ds.filesets('PSPS_test', { since: '2026-03-01T00:23:00Z' })).map((f) => f.name), ['B023', 'B024', 'B025']);
        assert.deepEqual((await ds.filesets('PSPS_test', { since: new Date('2026-03-01T00:24:30Z') })).map((f) => f.name), ['B025']);
        // The original index's query: everything after the fileset named.
        assert.deepEqual(parseProductIndex(await ds.textIndex('PSPS_test', undefined, 'B023')).map((f) => f.name), ['B024', 'B025']);
        const since = await rawRequest(url, 'GET', '/ds/PSPS_test/index.txt?since=2026-03-01T00:25:00Z');
        assert.deepEqual(parseProductIndex(since.body.toString()).map((f) => f.name), ['B025']);
        const missing = await rawRequest(url, 'GET', '/ds/PSPS_test/index.txt?B999');
        assert.equal(missing.status, 404);
        await assert.rejects(ds.filesets('PSPS_test', { since: 'yesterday' }), remote(400, 'time_invalid'));
        await assert.rejects(ds.filesetPage('PSPS_test', { pageSize: 20000 }), remote(400, 'query_invalid'));
        await ds.remove('PSPS_test', 'B002', { hide: true });
        assert.equal((await ds.filesets('PSPS_test')).length, 24);
        const withHidden = await ds.filesets('PSPS_test', { includeHidden: true });
        assert.equal(withHidden.length, 25);
        assert.equal(withHidden[1].hidden, true);
    }));

    it('removes one fileset or a name range (datastoreRemover), or hides them; files go with removal, stay with hiding', () => withDatastore(engine, {}, async ({ server }) => {
      const ds = new DatastoreClient({ url: server.url });
      await ds.addProduct(product);
      for (const n of [287, 288, 290, 299, 300, 301]) await ds.publish('PSPS_test', `B00328${n}`, [{ data: bytesOf(n, 50), name: `B00328${n}.fits` }]);
      assert.deepEqual((await ds.remove('PSPS_test', 'B00328287')).removed, ['B00328287']);
      await assert.rejects(stat(join(server.root, 'PSPS_test', 'B00328287')), { code: 'ENOENT' });
      await assert.rejects(ds.remove('PSPS_test', 'B00328287'), remote(404, 'fileset_not_found'));
      const range = await ds.remove('PSPS_test', 'B00328288', { to: 'B00328300' });
      assert.deepEqual(range.removed, ['B00328288', 'B00328290', 'B00328299', 'B00328300']);
      assert.deepEqual((await ds.filesets('PSPS_test')).map((f) => f.name), ['B00328301']);
      await assert.rejects(ds.remove('PSPS_test', 'B9', { to: 'B1' }), remote(400, 'range_invalid'));
      const hidden = await ds.remove('PSPS_test', 'B00328301', { hide: true });
      assert.deepEqual(hidden, { product: 'PSPS_test', removed: ['B00328301'], hidden: true });
      assert.deepEqual(await ds.filesets('PSPS_test'), []);
      assert.ok((await stat(join(server.root, 'PSPS_test', 'B00328301', 'B00328301.fits'))).isFile());
      const r = await rawRequest(server.url, 'GET', '/ds/PSPS_test/B00328301/B00328301.fits');
      assert.equal(r.status, 404);
      assert.equal(JSON.parse(r.body.toString()).error.code, 'fileset_hidden');
      assert.equal((await ds.product('PSPS_test')).lastFileset, null);
      await assert.rejects(ds.publish('PSPS_test', 'B00328301', [{ data: bytesOf(1, 5), name: 'x.fits' }]), remote(409, 'fileset_exists'));
      const health = await ds.health();
      assert.equal(health.filesets, 0);
      assert.equal(health.hiddenFilesets, 1);
    }));

    it('needs the server token for writes and a product read token for a protected product; refusals change nothing', () => withDatastore(engine, { token: 'write-secret' }, async ({ server }) => {
      const anonymous = new DatastoreClient({ url: server.url });
      const writer = new DatastoreClient({ url: server.url, token: 'write-secret' });
      const wrong = new DatastoreClient({ url: server.url, token: 'guess' });
      await assert.rejects(anonymous.addProduct(product), remote(401, 'unauthorized'));
      await assert.rejects(wrong.addProduct(product), remote(403, 'forbidden'));
      assert.deepEqual(await anonymous.products(), []);
      await writer.addProduct(product);
      await writer.addProduct({ name: 'secret', type: 'table', description: 'private', readToken: 'reader-secret' });
      await assert.rejects(writer.addProduct({ name: 'weak', type: 'table', description: 'x', readToken: 'short' }), remote(400, 'token_invalid'));
      await writer.publish('secret', 'S1', [{ data: bytesOf(1, 10), name: 'x.fits' }]);
      await assert.rejects(anonymous.publish('PSPS_test', 'B1', [{ data: bytesOf(1, 10), name: 'x.fits' }]), remote(401));
      await assert.rejects(wrong.publish('PSPS_test', 'B1', [{ data: bytesOf(1, 10), name: 'x.fits' }]), remote(403));
      await assert.rejects(wrong.remove('secret', 'S1'), remote(403));
      assert.deepEqual(await writer.filesets('PSPS_test'), []);
      // Reads of an open product need nothing; of a protected one, its read token (or the server's).
      assert.deepEqual(await anonymous.filesets('PSPS_test'), []);
      await assert.rejects(anonymous.filesets('secret'), remote(401, 'unauthorized'));
      await assert.rejects(wrong.fileset('secret', 'S1'), remote(403, 'forbidden'));
      const r = await rawRequest(server.url, 'GET', '/ds/secret/S1/x.fits');
      assert.equal(r.status, 401);
      const reader = new DatastoreClient({ url: server.url, token: 'reader-secret' });
      assert.deepEqual((await reader.filesets('secret')).map((f) => f.name), ['S1']);
      assert.deepEqual((await writer.filesets('secret')).map((f) => f.name), ['S1']);
      await assert.rejects(reader.publish('secret', 'S2', [{ data: bytesOf(1, 10), name: 'x.fits' }]), remote(403));
      // The protected product is not listed to those who may not read it.
      assert.deepEqual((await anonymous.products()).map((p) => p.name), ['PSPS_test']);
      assert.deepEqual(parseRootIndex(await anonymous.textIndex()).map((p) => p.name), ['PSPS_test']);
      assert.deepEqual((await reader.products()).map((p) => [p.name, p.protected]), [['PSPS_test', false], ['secret', true]]);
      assert.equal((await anonymous.health()).writable, true);
    }));

    it('refuses names that escape the root, whatever their encoding, with the reason', () => withDatastore(engine, {}, async ({ server }) => {
      const ds = new DatastoreClient({ url: server.url });
      await ds.addProduct(product);
      await ds.publish('PSPS_test', 'B1', [{ data: bytesOf(1, 10), name: 'x.fits' }]);
      const bad: [string, RegExp][] = [
        ['/ds/PSPS_test/B1/..%2F..%2F.datastore-id', /slash/],
        ['/ds/PSPS_test/%2e%2e%2f%2e%2e/x.fits', /slash/],
        ['/ds/%2Fetc/B1/passwd', /slash/],
        ['/ds/PSPS_test/B1/%2e.datastore-id', /start with a letter/],
        ['/ds/PSPS_test/B1/.lock', /start with a letter/],
        ['/ds/PSPS_test/B1/x%00.fits', /control character/],
        ['/ds/PSPS_test/B1/a%5Cb', /slash/],
        [`/ds/PSPS_test/B1/${'a'.repeat(201)}`, /longer than 200/],
        [`/products/${'p'.repeat(65)}/filesets`, /longer than 64/],
        ['/products/PSPS_test/filesets/B1/files/%E2%82%AC.fits', /character other than/],
      ];
      for (const [path, reason] of bad) {
        const r = await rawRequest(server.url, 'GET', path);
        assert.equal(r.status, 400, path);
        const error = JSON.parse(r.body.toString()).error;
        assert.equal(error.code, 'name_invalid', path);
        assert.match(error.message, reason, path);
      }
      // Literal dot segments are resolved before routing: they can only name another endpoint of the server.
      const dots = await rawRequest(server.url, 'GET', '/ds/PSPS_test/B1/../../../.datastore-id');
      assert.equal(dots.status, 404);
      const up = await rawRequest(server.url, 'PUT', '/products/PSPS_test/filesets/..%2Fescape', { 'content-type': FILESET_BODY_TYPE },
        Buffer.from(`${JSON.stringify({ files: [] })}\n`));
      assert.equal(up.status, 400);
      assert.deepEqual((await readdir(server.root)).sort(), ['.datastore-id', '.lock', '.staging', 'PSPS_test']);
    }));

    it('resumes a broken download from the partial file, and starts again when the partial file is wrong', () => withDatastore(engine, {}, async ({ server, dir, logLines }) => {
      const ds = new DatastoreClient({ url: server.url });
      await ds.addProduct(product);
      const data = bytesOf(9, 3 * 2 ** 20 + 17);
      await ds.publish('PSPS_test', 'B1', [{ data, name: 'big.fits' }]);
      const [file] = (await ds.fileset('PSPS_test', 'B1')).files;
      const out = join(dir, 'out');
      await mkdir(out);
      const half = 1_500_000;
      await writeFile(join(out, 'big.fits.part'), data.subarray(0, half));
      const resumed = await ds.download('PSPS_test', 'B1', file, join(out, 'big.fits'));
      assert.equal(resumed.resumedFrom, half);
      assert.ok((await readFile(join(out, 'big.fits'))).equals(data));
      assert.deepEqual(await readdir(out), ['big.fits']);
      assert.ok(logLines.some((l) => /GET \/products\/PSPS_test\/filesets\/B1\/files\/big\.fits 206/.test(l)));
      // A partial file with wrong bytes: the md5 check fails, the client starts from scratch.
      const wrong = Buffer.from(data.subarray(0, half));
      wrong[100] ^= 0xff;
      await writeFile(join(out, 'again.fits.part'), wrong);
      const again = await ds.download('PSPS_test', 'B1', file, join(out, 'again.fits'));
      assert.equal(again.resumedFrom, half);
      assert.ok((await readFile(join(out, 'again.fits'))).equals(data));
      // A file that changed on the server since it was listed is refused, not mixed.
      await assert.rejects(ds.download('PSPS_test', 'B1', { ...file, md5: md5('x') }, join(out, 'c.fits')),
        (e: unknown) => e instanceof DatastoreError && e.code === 'file_changed');
    }));

    it('reports counts, the sweep and request totals; refuses writes off loopback without a token', () => withDatastore(engine, {}, async ({ server, db, dir }) => {
      const ds = new DatastoreClient({ url: server.url });
      await ds.addProduct(product);
      await ds.publish('PSPS_test', 'B1', [{ data: bytesOf(1, 10), name: 'x.fits' }, { data: bytesOf(2, 20), name: 'y.fits' }]);
      const health = await ds.health();
      assert.equal(health.status, 'ok');
      assert.deepEqual([health.products, health.filesets, health.files, health.bytes], [1, 1, 2, 30]);
      assert.deepEqual(health.sweep, { stagingRemoved: 0, orphansRemoved: 0, missing: 0 });
      assert.ok(health.requests >= 3);
      assert.ok(health.freeBytes > 0);
      // One server per root.
      await assert.rejects(startDatastoreServer({ root: server.root, db }), (e: unknown) => e instanceof DatastoreError && e.code === 'root_locked');
      // Another database with this root, or this database with another root, is refused: the sweep must never delete another store's files.
      const other = await openDatabase(`sqlite:${join(dir, 'other.db')}`, { migrations: [DATASTORE_MIGRATIONS] });
      try {
        await server.close();
        await assert.rejects(startDatastoreServer({ root: server.root, db: other }), (e: unknown) => e instanceof DatastoreError && e.code === 'store_mismatch');
        await mkdir(join(dir, 'elsewhere'));
        await writeFile(join(dir, 'elsewhere', 'keep.txt'), 'x');
        await assert.rejects(startDatastoreServer({ root: join(dir, 'elsewhere'), db }), (e: unknown) => e instanceof DatastoreError && e.code === 'store_mismatch');
        const open = await startDatastoreServer({ root: join(dir, 'open'), db: other, host: '0.0.0.0' });
        try {
          assert.equal(open.writable, false);
          const client = new DatastoreClient({ url: `http://127.0.0.1:${open.port}` });
          await assert.rejects(client.addProduct(product), remote(403, 'writes_disabled'));
        } finally {
          await open.close();
        }
      } finally {
        await other.close();
      }
    }));
  });
}
