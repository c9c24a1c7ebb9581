// real_limits_shared.test.mjs — identical calls that wait on Klaviyo's real, unscaled report
// window (no RATE_LIMIT_SCALE, a simulator that enforces the real windows) share one
// computation.
//
// One worker. Calls B and C (February's and March's campaign performance: one
// campaign-values report each) fill the reports' 2-per-minute window until about 60 s. Then
// six identical calls for January arrive together: the first runs and waits on a service
// thread for the window's next slot (about 60 s); the five others wait for it on the worker's
// event loop, holding no thread. All six are answered when that one report comes back, with the
// same data; five say klaviyo_calls 0 and "shared" in the access log; three reports in all,
// and the worker added no thread for them (six calls on four threads would have added two).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { restCall, simStats, startRealService } from './lib.mjs';

const TOOL = 'klaviyo_get_campaign_performance';
const REPORT = 'POST /api/campaign-values-reports';
const A = { account: 'acme', start_date: '2025-01-01', end_date: '2025-01-31' };
const B = { account: 'acme', start_date: '2025-02-01', end_date: '2025-02-28' };
const C = { account: 'acme', start_date: '2025-03-01', end_date: '2025-03-31' };

describe('identical calls at Klaviyo real limits', () => {
  let svc;
  let sim;
  let env;

  before(async () => {
    svc = await startRealService('real-shared', { LOG_LEVEL: 'debug', REST_TIMEOUT_SECONDS: '30' },
      { workers: 1 });
    ({ sim, env } = svc);
  });

  after(async () => {
    await svc?.stop();
  });

  test('wait for one report together, on the loop, and get its answer', async () => {
    const t0 = Date.now();
    for (const args of [B, C]) {
      const r = await restCall(env.KLAVIYO_MCP_SOCKET, TOOL, args);
      assert.equal(r.status, 200, r.text.slice(0, 400));
    }
    assert.ok(Date.now() - t0 < 10000, `two reports took ${Date.now() - t0} ms`);

    const rids = [0, 1, 2, 3, 4, 5].map((i) => `shared-${i}-${t0}`);
    const answers = await Promise.all(rids.map((rid) =>
      restCall(env.KLAVIYO_MCP_SOCKET, TOOL, A, { 'X-Request-Id': rid })));
    const ms = Date.now() - t0;
    assert.ok(ms > 55000, `answered at ${ms} ms, before the window had a slot`);
    assert.ok(ms < 75000, `answered at ${ms} ms`);
    for (const r of answers) {
      assert.equal(r.status, 200, r.text.slice(0, 400));
      assert.deepEqual(r.body.data, answers[0].body.data);
    }
    const calls = answers.map((r) => r.body.metadata.klaviyo_calls).sort();
    assert.deepEqual(calls, [0, 0, 0, 0, 0, 1], JSON.stringify(calls));

    const stats = await simStats(sim);
    assert.equal(stats.total_throttled, 0, JSON.stringify(stats.throttled));
    assert.equal(stats.calls[REPORT], 3, JSON.stringify(stats.calls));
    const log = svc.restd.stderr();
    const shared = log.split('\n').filter((l) => l.includes('"event":"request"') &&
      l.includes('"shared":true') && rids.some((rid) => l.includes(`"request_id":"${rid}"`)));
    assert.equal(shared.length, 5, log.slice(-3000));
    assert.equal((log.match(/"event":"service_thread_added"/g) || []).length, 0,
      log.slice(-3000));
  });
});
