// real_limits_order.test.mjs — calls waiting for one rate window are answered in arrival order,
// at Klaviyo's real, unscaled limits (no RATE_LIMIT_SCALE, a simulator that enforces the real
// windows) on a klaviyo-restd with two workers.
//
// Four campaign-performance calls on one account, each one campaign-values report (a month),
// started 400 ms apart (far enough that a busy machine does not swap two arrivals; all four
// still arrive before the second slot): the reports' windows allow one per second and two per minute (each held
// 250 ms longer), so slots free at about 0, 1.25, 60.25 and 61.5 s. Every slot must go to the
// call that has waited longest: finishing order 1, 2, 3, 4, all within about 62 s. (Without
// the order, the later calls win each race for a freed slot about half the time or more.)

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { restCall, simStats, startRealService } from './lib.mjs';

const TOOL = 'klaviyo_get_campaign_performance';
const REPORT = 'POST /api/campaign-values-reports';
const MONTHS = [
  { start_date: '2025-01-01', end_date: '2025-01-31' },
  { start_date: '2025-02-01', end_date: '2025-02-28' },
  { start_date: '2025-03-01', end_date: '2025-03-31' },
  { start_date: '2025-04-01', end_date: '2025-04-30' },
];

describe('calls waiting for a report window at Klaviyo real limits', () => {
  let svc;
  let sim;
  let env;

  before(async () => {
    svc = await startRealService('real-order',
      { CACHE_TTL_SECONDS: '0', REST_TIMEOUT_SECONDS: '30' }, { workers: 2 });
    ({ sim, env } = svc);
  });

  after(async () => {
    await svc?.stop();
  });

  test('four report calls on one account finish in the order they came', async () => {
    const t0 = Date.now();
    const calls = MONTHS.map(async (window, i) => {
      await sleep(400 * i);
      const r = await restCall(env.KLAVIYO_MCP_SOCKET, TOOL, { account: 'acme', ...window });
      return { i, r, ms: Date.now() - t0 };
    });
    const done = await Promise.all(calls);

    for (const c of done) {
      assert.equal(c.r.status, 200, `call ${c.i}: ${c.r.text.slice(0, 400)}`);
      assert.ok(Array.isArray(c.r.body.data.campaigns));
    }
    const ms = done.map((c) => c.ms);
    // in arrival order: the second slot (a second after the first) went to the second call,
    // the two after the minute to the third and then the fourth
    for (let i = 1; i < ms.length; i++) {
      assert.ok(ms[i - 1] < ms[i], `finished at ${JSON.stringify(ms)} ms`);
    }
    assert.ok(ms[1] < 20000, `the second call should not wait for the minute (${ms[1]} ms)`);
    // the last two waited for the 2-per-minute window, and no longer than they need
    assert.ok(ms[2] > 55000, `the third finished at ${ms[2]} ms`);
    assert.ok(ms[3] < 70000, `the fourth finished at ${ms[3]} ms`);

    // one report per call, none throttled by the (real-limit) simulator
    const stats = await simStats(sim);
    assert.equal(stats.total_throttled, 0, JSON.stringify(stats.throttled));
    assert.equal(stats.calls[REPORT], MONTHS.length, JSON.stringify(stats.calls));
  });
});
