// real_limits_http.test.mjs — a long MCP call over Streamable HTTP at Klaviyo's real, unscaled
// rate limits (no RATE_LIMIT_SCALE, a simulator that enforces the real windows): campaign
// performance over three years is three campaign-values reports, two per minute, so the third
// waits about a minute. The SDK v1 client over HTTP gives up after 20 s without progress; only
// the service's keep-alives (every 10 s while the call waits, sent as progress notifications
// with increasing values on the call's SSE stream) carry it past the minute, and
// REST_TIMEOUT_SECONDS (30 s) must not cut it.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { killAll, realEnv, rmtree, simStats, startSim, tmpdir } from './lib.mjs';
import { TOKEN, startHttpRestd } from './httplib.mjs';

const WINDOW = { start_date: '2023-01-01', end_date: '2025-12-30' };   // 1095 days: 3 reports
const TOOL = 'klaviyo_get_campaign_performance';
const REPORT = 'POST /api/campaign-values-reports';

describe('a long MCP call over HTTP at Klaviyo real limits', () => {
  let dir;
  let sim;
  let env;
  let restd;
  let client;

  before(async () => {
    dir = tmpdir('real-http');
    sim = await startSim(dir, { limits: true });
    env = realEnv(sim, dir, { CACHE_TTL_SECONDS: '0', REST_TIMEOUT_SECONDS: '30' });
    restd = await startHttpRestd(env);
    client = new Client({ name: 'klaviyo-http-real-limits', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(restd.url),
      { requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } } }));
  });

  after(async () => {
    await client?.close();
    await restd?.stop();
    await sim?.stop();
    killAll();
    if (dir) rmtree(dir);
  });

  test('the call waits a minute for a report window and finishes, kept alive by progress',
    async () => {
      const progress = [];
      const t0 = Date.now();
      const res = await client.callTool({ name: TOOL, arguments: { account: 'acme', ...WINDOW } },
        undefined, {
          timeout: 20000,
          resetTimeoutOnProgress: true,
          maxTotalTimeout: 240000,
          onprogress: (p) => progress.push({ at: Date.now() - t0, ...p }),
        });
      const ms = Date.now() - t0;
      assert.equal(res.isError, false, JSON.stringify(res.content));
      assert.ok(ms > 55000, `the call should wait for the report window (${ms} ms)`);
      assert.ok(progress.length >= 5, JSON.stringify(progress));
      for (let i = 1; i < progress.length; i++) {
        assert.ok(progress[i].progress > progress[i - 1].progress, JSON.stringify(progress));
        assert.ok(progress[i].at - progress[i - 1].at < 20000, JSON.stringify(progress));
      }
      assert.ok(progress.some((x) => /^waiting on Klaviyo/.test(x.message)));
      const stats = await simStats(sim);
      assert.equal(stats.total_throttled, 0, JSON.stringify(stats.throttled));
      assert.equal(stats.calls[REPORT], 3, JSON.stringify(stats.calls));
      assert.doesNotMatch(restd.stderr(), /"status":499/);
      assert.ok(Array.isArray(res.structuredContent.data.campaigns));
    });
});
