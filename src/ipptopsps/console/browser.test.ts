// The console page in a real browser (Debian's headless Chromium driven by playwright-core)
// against a real server over a real SQLite tracking database.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { withTempDir } from '../../common/index.ts';
import { heartbeatClient } from '../clients.ts';
import { getConfig } from '../configs.ts';
import { openIppToPsps } from '../tracking-db.ts';
import { lifecyclePlotSource, startConsoleServer } from './index.ts';
import { seedCampaign } from './test-support.ts';

const CHROMIUM = '/usr/bin/chromium';

/** What the page's script sees; the project's type library has no DOM. */
interface PageGlobals { document: { querySelector(selector: string): { textContent: string | null; className: string } | null } }

/** Waits until the element `selector` reads `text` (the page updates it on its own). */
async function waitForText(page: Page, selector: string, text: string): Promise<void> {
  await page.waitForFunction(([s, t]) => (globalThis as unknown as PageGlobals).document.querySelector(s)?.textContent === t, [selector, text] as const);
}
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (scripts/install-test-deps.sh installs Debian's chromium)`;

describe('console page in headless Chromium', { skip }, () => {
  it('shows a client and a failed batch with its reason; pauses and stops the client; edits a config; activates another', () => withTempDir(async (dir) => {
    const db = await openIppToPsps(`sqlite:${join(dir, 'tracking.db')}`);
    const seeded = await seedCampaign(db);
    const server = await startConsoleServer({ db, token: 'sekrit', refreshSeconds: 0.5, plots: lifecyclePlotSource({ width: 400, height: 200 }) });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(10_000);
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      // Every refusal the page met: only the bad config value below is expected.
      const refused: string[] = [];
      page.on('response', (r) => { if (r.status() >= 400) refused.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`); });
      // The token rides in the fragment, as the command's printed link suggests.
      await page.goto(`${server.url}/#token=sekrit`);

      const loader = page.locator(`#clients tr[data-client-id="${seeded.loaderId}"]`);
      await loader.waitFor();
      assert.match(await loader.innerText(), /loader\s+alpha\s+ipp005\s+4242/);
      assert.equal(await loader.locator('td.state').innerText(), 'running');

      const failed = page.locator('#failed tr[data-batch="B00000002"]');
      assert.match(await failed.innerText(), /loaded_to_ODM/);
      assert.equal(await failed.locator('td.reason').innerText(), seeded.odmReason);
      assert.equal(await page.locator('#stages tr[data-stage-row="alpha/P2"] td[data-stage="processed"][data-count="failed"]').innerText(), '1');
      assert.match(await page.locator('#metrics').innerText(), /batches last 24h\s+20\s+2/);

      // The lifecycle plots, drawn by the server as PNG and decoded by the browser.
      await page.waitForFunction(() => {
        const imgs = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ complete: boolean; naturalWidth: number }> } })
          .document.querySelectorAll('#plots img');
        return imgs.length === 6 && Array.from(imgs).every((i) => i.complete && i.naturalWidth === 400);
      });

      // Pause: the request is left for the program, which takes it at its next heartbeat.
      await loader.locator('button[data-action="pause"]').click();
      await waitForText(page, `#clients tr[data-client-id="${seeded.loaderId}"] td.request`, 'pause');
      assert.equal((await db.get('SELECT request FROM client WHERE client_id = ?', [seeded.loaderId]))?.request, 'pause');
      await heartbeatClient(db, seeded.loaderId, { leaseMs: 60_000 });
      // Live refresh: nothing is clicked, the page catches up on its own.
      await waitForText(page, `#clients tr[data-client-id="${seeded.loaderId}"] td.state`, 'paused');
      assert.equal(await loader.locator('button[data-action="pause"]').isDisabled(), true);

      await loader.locator('button[data-action="stop"]').click();
      await waitForText(page, `#clients tr[data-client-id="${seeded.loaderId}"] td.request`, 'stop');
      await heartbeatClient(db, seeded.loaderId, { leaseMs: 60_000 });
      await waitForText(page, `#clients tr[data-client-id="${seeded.loaderId}"] td.state`, 'stopped');
      assert.equal((await db.get('SELECT state FROM client WHERE client_id = ?', [seeded.loaderId]))?.state, 'stopped');

      // Edit a config: a bad value is refused with the field named and marked; a good one is saved.
      await page.locator('#configs tr[data-config="alpha"] button[data-action="edit"]').click();
      const boxSize = page.locator('#field-box_size');
      assert.equal(await boxSize.inputValue(), '2');
      await boxSize.fill('-1');
      await page.locator('#config-save').click();
      await page.waitForFunction(() => ((globalThis as unknown as PageGlobals).document.querySelector('#config-error')?.textContent ?? '') !== '');
      assert.match(await page.locator('#config-error').innerText(), /box_size \(double\) "-1" is/);
      assert.match(await boxSize.getAttribute('class') ?? '', /\binvalid\b/);
      assert.equal((await getConfig(db, 'alpha')).box_size, 2);
      await boxSize.fill('5');
      await page.locator('#config-save').click();
      await page.locator('#config-form').waitFor({ state: 'hidden' });
      assert.equal((await getConfig(db, 'alpha')).box_size, 5);

      // Activate the inactive config.
      const beta = page.locator('#configs tr[data-config="beta"]');
      assert.equal(await beta.locator('td.active').innerText(), 'no');
      await beta.locator('button[data-action="activate"]').click();
      await waitForText(page, '#configs tr[data-config="beta"] td.active', 'yes');
      assert.equal((await getConfig(db, 'beta')).active, true);
      assert.deepEqual(pageErrors, []);
      assert.deepEqual(refused, ['PUT /api/configs/alpha 400']);
    } finally {
      await browser.close();
      await server.close();
      await db.close();
    }
  }, 'ipp-console-'));
});
