import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { withTempDir } from '../../common/index.ts';
import { getConfig, openIppToPsps } from '../../ipptopsps/index.ts';
import { seedCampaign } from '../../ipptopsps/console/test-support.ts';
import { runIpp, startIpp } from '../testing.ts';

describe('ipp console', () => {
  it('serves the page over the tracking database until interrupted; changes need the token from the environment', () => withTempDir(async (dir) => {
    const dbUrl = `sqlite:${join(dir, 'tracking.db')}`;
    const db = await openIppToPsps(dbUrl);
    try {
      await seedCampaign(db);
    } finally {
      await db.close();
    }
    const controller = new AbortController();
    const serving = startIpp(['console', '--db', dbUrl, '--port', '0'], { signal: controller.signal, env: { IPP_CONSOLE_TOKEN: 'cli-secret' } });
    let url: string | undefined;
    for (let i = 0; i < 400 && url === undefined; i++) {
      url = /console: (http:\/\/\S+?)\/? /.exec(serving.stdout())?.[1];
      if (url === undefined) await sleep(25);
    }
    try {
      assert.ok(url, `console printed its address: ${serving.stdout()} ${serving.stderr()}`);
      assert.match(serving.stdout(), /changes need the token/);
      const page = await fetch(`${url}/`);
      assert.match(await page.text(), /ippToPsps console/);
      const overview = await (await fetch(`${url}/api/overview`)).json() as { configs: { name: string }[] };
      assert.deepEqual(overview.configs.map((c) => c.name), ['alpha', 'beta']);
      assert.equal((await fetch(`${url}/api/configs/beta/activate`, { method: 'POST' })).status, 401);
      const ok = await fetch(`${url}/api/configs/beta/activate`, { method: 'POST', headers: { authorization: 'Bearer cli-secret' } });
      assert.equal(ok.status, 200);
    } finally {
      controller.abort();
    }
    assert.equal(await serving.done, 0);
    assert.match(serving.stdout(), /console: stopped/);
    const after = await openIppToPsps(dbUrl);
    try {
      assert.equal((await getConfig(after, 'beta')).active, true);
    } finally {
      await after.close();
    }
  }, 'ipp-console-cli-'));

  it('refuses bad options with a usage error', async () => {
    for (const [args, message] of [
      [['console', '--port', '70000'], /--port "70000" must be a whole number/],
      [['console', '--refresh', '0'], /--refresh "0" must be a number of seconds/],
      [['console', 'extra'], /takes no arguments/],
    ] as const) {
      const r = await runIpp(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    }
  });
});
