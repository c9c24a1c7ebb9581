// real_limits.test.mjs — long calls at Klaviyo's real, unscaled rate limits (no
// RATE_LIMIT_SCALE, a simulator that enforces the real windows): a call whose Klaviyo requests
// are a minute apart lives as long as its work, through the shim with the official MCP SDK
// client and over REST with and without streaming, all three at once on one klaviyo-restd whose
// REST_TIMEOUT_SECONDS (30 s) is shorter than the calls.
//
// The call: campaign performance over three years is three campaign-values reports (one per
// 365 days); the reports' window is 2 per minute, so the third waits about a minute.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { BIN, restCall, simStats, startRealService } from './lib.mjs';

const WINDOW = { start_date: '2023-01-01', end_date: '2025-12-30' };   // 1095 days: 3 reports
const TOOL = 'klaviyo_get_campaign_performance';
const REPORT = 'POST /api/campaign-values-reports';

// POST /v1/tools/<name> with Accept: application/x-ndjson over the Unix socket; resolves with
// every line and the time (ms since the start) it arrived.
function streamCall(sock, name, args) {
  const body = JSON.stringify(args);
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, path: `/v1/tools/${name}`, method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/x-ndjson',
        'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let buf = '';
      const lines = [];
      res.on('data', (c) => {
        buf += c.toString('utf8');
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          lines.push({ at: Date.now() - t0, msg: JSON.parse(buf.slice(0, nl)) });
          buf = buf.slice(nl + 1);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode, lines, rest: buf }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('long calls at Klaviyo real limits', () => {
  let svc;
  let sim;
  let env;
  let client;

  before(async () => {
    svc = await startRealService('real', { CACHE_TTL_SECONDS: '0', REST_TIMEOUT_SECONDS: '30' });
    ({ sim, env } = svc);
    const transport = new StdioClientTransport({ command: BIN.mcp, args: [], env, cwd: svc.dir,
      stderr: 'pipe' });
    client = new Client({ name: 'klaviyo-mcp-real-limits', version: '1.0.0' });
    await client.connect(transport);
  });

  after(async () => {
    await client?.close();
    await svc?.stop();
  });

  test('a call waiting a minute for a report window finishes on MCP and REST', async () => {
    const progress = [];
    const t0 = Date.now();
    // MCP: the SDK's timeout is 20 s, reset by each progress notification; only the service's
    // keep-alives (every 10 s while a call waits) can carry the call past the minute.
    const mcp = client.callTool({ name: TOOL, arguments: { account: 'acme', ...WINDOW } },
      undefined, {
        timeout: 20000,
        resetTimeoutOnProgress: true,
        maxTotalTimeout: 240000,
        onprogress: (p) => progress.push({ at: Date.now() - t0, ...p }),
      }).then((r) => ({ r, ms: Date.now() - t0 }));
    const streamed = streamCall(env.KLAVIYO_MCP_SOCKET, TOOL, { account: 'kiwi', ...WINDOW });
    const plain = restCall(env.KLAVIYO_MCP_SOCKET, TOOL, { account: 'nosms', ...WINDOW })
      .then((r) => ({ r, ms: Date.now() - t0 }));

    const [m, s, p] = await Promise.all([mcp, streamed, plain]);

    // MCP: a success, after the minute's wait
    assert.equal(m.r.isError, false, JSON.stringify(m.r.content));
    assert.ok(Array.isArray(m.r.structuredContent.data.campaigns));
    assert.ok(m.ms > 55000, `the call should wait for the report window (${m.ms} ms)`);
    // progress: every notification has a total, values strictly increase, and keep-alives
    // came while the call waited (none of them further apart than 20 s)
    assert.ok(progress.length >= 5, JSON.stringify(progress));
    for (let i = 0; i < progress.length; i++) {
      assert.equal(typeof progress[i].total, 'number', JSON.stringify(progress[i]));
      assert.ok(progress[i].progress <= progress[i].total, JSON.stringify(progress[i]));
      if (i > 0) assert.ok(progress[i].progress > progress[i - 1].progress);
    }
    assert.ok(progress.some((x) => /^waiting on Klaviyo/.test(x.message)));
    for (let i = 1; i < progress.length; i++) {
      assert.ok(progress[i].at - progress[i - 1].at < 20000, JSON.stringify(progress));
    }

    // REST, streamed: keep-alive lines at most ~10 s apart, then the result
    assert.equal(s.status, 200);
    assert.equal(s.rest, '');
    const last = s.lines[s.lines.length - 1];
    assert.equal(last.msg.status, 200, JSON.stringify(last.msg).slice(0, 400));
    assert.ok(Array.isArray(last.msg.result.data.campaigns));
    assert.ok(last.at > 55000, `${last.at} ms`);
    assert.ok(s.lines.some((l) => l.msg.progress?.waiting === true));
    for (let i = 1; i < s.lines.length; i++) {
      assert.ok(s.lines[i].at - s.lines[i - 1].at < 12000,
        `silent for ${s.lines[i].at - s.lines[i - 1].at} ms`);
    }

    // REST, plain JSON: nothing can be sent before the answer, and the idle timeout (30 s)
    // must not cut a call that is waiting on Klaviyo
    assert.equal(p.r.status, 200, p.r.text.slice(0, 400));
    assert.ok(Array.isArray(p.r.body.data.campaigns));
    assert.ok(p.ms > 55000, `${p.ms} ms`);

    // three reports per account, none throttled by the (real-limit) simulator
    const stats = await simStats(sim);
    assert.equal(stats.total_throttled, 0, JSON.stringify(stats.throttled));
    assert.equal(stats.calls[REPORT], 9, JSON.stringify(stats.calls));
    // the service logged three whole calls, none cut (no 499)
    assert.doesNotMatch(svc.restd.stderr(), /"status":499/);
  });
});
