// real_limits_refresh.test.mjs — a kept answer refreshed ahead of its expiry at Klaviyo's real,
// unscaled limits (no RATE_LIMIT_SCALE, a simulator that enforces the real windows).
//
// CACHE_TTL_SECONDS=20 and CACHE_REFRESH_AHEAD_SECONDS=10. Call A (January's campaign
// performance: one campaign-values report) at 0 s and call B (February: a second report) fill
// the reports' 2-per-minute window until about 60 s. Asked again at 11 s, A is answered from
// the answer cache at once, and that hit in its last ten seconds starts A's refresh, which
// waits on a service thread for the window's next slot (about 60.3 s) instead of failing.
// A's first answer expires at 20 s: A asked at 21 s waits for that same Klaviyo request (one
// request in flight per question) and is answered when the refresh's report comes back.
// Three reports in all, none throttled by the simulator, and the log says the refresh was
// kept and none failed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { restCall, simStats, startRealService } from './lib.mjs';

const TOOL = 'klaviyo_get_campaign_performance';
const REPORT = 'POST /api/campaign-values-reports';
const A = { account: 'acme', start_date: '2025-01-01', end_date: '2025-01-31' };
const B = { account: 'acme', start_date: '2025-02-01', end_date: '2025-02-28' };

describe('a hot answer refreshed at Klaviyo real limits', () => {
  let svc;
  let sim;
  let env;

  before(async () => {
    svc = await startRealService('real-refresh', { CACHE_TTL_SECONDS: '20',
      CACHE_REFRESH_AHEAD_SECONDS: '10', LOG_LEVEL: 'debug', REST_TIMEOUT_SECONDS: '30' },
    { workers: 2 });
    ({ sim, env } = svc);
  });

  after(async () => {
    await svc?.stop();
  });

  test('the refresh waits for the report window and a caller after expiry shares it',
    async () => {
      const t0 = Date.now();
      const meta = (r) => r.body.metadata;
      const a1 = await restCall(env.KLAVIYO_MCP_SOCKET, TOOL, A);
      assert.equal(a1.status, 200, a1.text.slice(0, 400));
      const b = await restCall(env.KLAVIYO_MCP_SOCKET, TOOL, B);
      assert.equal(b.status, 200, b.text.slice(0, 400));
      assert.ok(Date.now() - t0 < 10000, `two reports took ${Date.now() - t0} ms`);

      // in A's last ten seconds: answered at once, from the answer cache
      await sleep(Math.max(0, 11000 - (Date.now() - t0)));
      const hit = await restCall(env.KLAVIYO_MCP_SOCKET, TOOL, A);
      assert.equal(hit.status, 200);
      assert.equal(meta(hit).klaviyo_calls, 0);
      assert.deepEqual(hit.body.data, a1.body.data);

      // after A's first answer expired: waits for the refresh's report, then answers
      await sleep(Math.max(0, 21000 - (Date.now() - t0)));
      const late = await restCall(env.KLAVIYO_MCP_SOCKET, TOOL, A);
      const lateMs = Date.now() - t0;
      assert.equal(late.status, 200, late.text.slice(0, 400));
      assert.deepEqual(late.body.data, a1.body.data);
      assert.ok(lateMs > 55000, `answered at ${lateMs} ms, before the window had a slot`);
      assert.ok(lateMs < 75000, `answered at ${lateMs} ms`);

      // and then again from the answer cache
      const again = await restCall(env.KLAVIYO_MCP_SOCKET, TOOL, A);
      assert.equal(again.status, 200);
      assert.equal(meta(again).klaviyo_calls, 0);

      const stats = await simStats(sim);
      assert.equal(stats.total_throttled, 0, JSON.stringify(stats.throttled));
      assert.equal(stats.calls[REPORT], 3, JSON.stringify(stats.calls));
      const log = svc.restd.stderr();
      assert.equal((log.match(/"event":"answer_refreshed"/g) || []).length, 1, log.slice(-2000));
      assert.equal((log.match(/"event":"answer_refresh_failed"/g) || []).length, 0);
    });
});
