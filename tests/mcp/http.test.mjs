// http.test.mjs — MCP over Streamable HTTP on klaviyo-restd's /mcp, with real clients: the
// official SDK v1 client (@modelcontextprotocol/sdk) and the v2 client
// (@modelcontextprotocol/client) over StreamableHTTPClientTransport, the MCP Inspector CLI,
// and raw HTTP for the 2026-07-28 stateless form and for every refusal the spec names. Every
// structuredContent is validated against its outputSchema and compared with REST's `data`.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import * as v2 from '@modelcontextprotocol/client';
import Ajv from 'ajv';

import {
  META_SERVER, STATELESS, killAll, meta, restCall, restGet, rmtree, serviceEnv, simFault,
  simStats, startSim, tmpdir, toolArgs, waitFor,
} from './lib.mjs';
import { TOKEN, TOKEN2, mcpHeaders, request, startHttpRestd } from './httplib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const INIT = (version = '2025-11-25', id = 'init') => ({
  jsonrpc: '2.0', id, method: 'initialize',
  params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

let dir;
let sim;
let env;
let restd;

before(async () => {
  dir = tmpdir('http');
  sim = await startSim(dir);
  env = serviceEnv(sim, dir);
  restd = await startHttpRestd(env);
});

after(async () => {
  const end = await restd?.stop();
  await sim?.stop();
  // a clean stop, and nothing from the sanitizers
  assert.deepEqual(end, { code: 0, signal: null }, restd?.stderr().slice(-3000));
  assert.doesNotMatch(restd?.stderr() ?? '', /Sanitizer|runtime error/);
  killAll();
  if (dir) rmtree(dir);
});

function v1Client() {
  const transport = new StreamableHTTPClientTransport(new URL(restd.url),
    { requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } } });
  return { client: new Client({ name: 'klaviyo-http-v1', version: '1.0.0' }), transport };
}

// A raw session (2025-11-25): initialize, then headers for later requests.
async function session(token = TOKEN) {
  const r = await request(restd.port, { headers: mcpHeaders({}, token), body: INIT() });
  assert.equal(r.status, 200, r.text);
  const sid = r.headers['mcp-session-id'];
  assert.match(sid, /^[0-9a-f]{32}$/);
  return sid;
}

function statelessHeaders(method, name) {
  return mcpHeaders({ 'MCP-Protocol-Version': STATELESS, 'Mcp-Method': method,
    ...(name ? { 'Mcp-Name': name } : {}) });
}

async function checkAllTools(call, tools) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const flows = await call('klaviyo_get_flows', { account: 'acme' });
  const args = toolArgs(flows.structuredContent.data.flows[0].flow_id);
  assert.deepEqual(Object.keys(args).sort(), tools.map((t) => t.name).sort());
  for (const tool of tools) {
    const res = await call(tool.name, args[tool.name]);
    assert.equal(res.isError, false, `${tool.name}: ${res.content?.[0]?.text}`);
    const validate = ajv.compile(tool.outputSchema);
    assert.ok(validate(res.structuredContent), `${tool.name}: ${ajv.errorsText(validate.errors)}`);
    assert.deepEqual(JSON.parse(res.content[0].text), res.structuredContent);
    const rest = await restCall(env.KLAVIYO_MCP_SOCKET, tool.name, args[tool.name]);
    assert.equal(rest.status, 200, rest.text);
    if (tool.name === 'klaviyo_get_budget') {
      // a live reading: the waits shrink between the two calls, the counts do not
      const counts = (d) => d.accounts.map((x) => [x.account, x.report_calls_left_today]);
      assert.deepEqual(counts(res.structuredContent.data), counts(rest.body.data));
      continue;
    }
    assert.deepEqual(res.structuredContent.data, rest.body.data, `${tool.name}: MCP and REST differ`);
  }
}

describe('the SDK v1 client over StreamableHTTPClientTransport', () => {
  let client;
  let transport;
  let tools;

  before(async () => {
    ({ client, transport } = v1Client());
    await client.connect(transport);
  });
  after(async () => client?.close());

  test('initialize: a session, the server, its instructions', () => {
    assert.match(transport.sessionId, /^[0-9a-f]{32}$/);
    assert.equal(client.getServerVersion().name, 'klaviyo-mcp');
    assert.deepEqual(client.getServerCapabilities().tools, { listChanged: false });
    assert.match(client.getInstructions(), /klaviyo_list_accounts first/);
  });

  test('tools/list equals the registry (GET /v1/tools)', async () => {
    ({ tools } = await client.listTools());
    const rest = await restGet(env.KLAVIYO_MCP_SOCKET, '/v1/tools');
    assert.deepEqual(tools.map((t) => t.name), rest.body.tools.map((t) => t.name));
    for (const t of tools) {
      const r = rest.body.tools.find((x) => x.name === t.name);
      assert.deepEqual(t.inputSchema, r.inputSchema);
      assert.deepEqual(t.outputSchema, r.outputSchema);
      assert.equal(t.annotations.readOnlyHint, true);
    }
  });

  test('every tool: valid against its outputSchema and equal to REST', async () => {
    await checkAllTools((name, args) => client.callTool({ name, arguments: args }), tools);
  });

  test('progress arrives on the response stream, increasing', async () => {
    const seen = [];
    const res = await client.callTool({ name: 'klaviyo_get_performance_over_time',
      arguments: { account: 'kiwi', entity: 'campaign', interval: 'weekly',
        start_date: '2025-05-02', end_date: '2025-06-12' } },
    undefined, { onprogress: (p) => seen.push(p) });
    assert.equal(res.isError, false, res.content?.[0]?.text);
    assert.ok(seen.length >= 2, JSON.stringify(seen));
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].progress > seen[i - 1].progress);
  });

  test('a tool error is a result; an unknown tool is -32602', async () => {
    const res = await client.callTool({ name: 'klaviyo_get_flows', arguments: { account: 'nope' } });
    assert.equal(res.isError, true);
    assert.match(res.content[0].text, /^UNKNOWN_ACCOUNT: /);
    await assert.rejects(client.callTool({ name: 'klaviyo_nope', arguments: {} }),
      (e) => e.code === -32602);
  });

  test('cancelling a call stops it before its next Klaviyo request', async () => {
    const route = 'POST /api/campaign-values-reports';
    const before = (await simStats(sim)).calls[route] || 0;
    await simFault(sim, { method: 'POST', path: '/api/campaign-values-reports', count: 1,
      mode: 'delay', delay_ms: 2000 });
    const ac = new AbortController();
    // three years: three reports, one after the other
    const p = client.callTool({ name: 'klaviyo_get_campaign_performance',
      arguments: { account: 'acme', start_date: '2021-01-01', end_date: '2023-12-30' } },
    undefined, { signal: ac.signal });
    await waitFor(async () => ((await simStats(sim)).calls[route] || 0) > before,
      { what: 'the first report to reach the simulator' });
    ac.abort();
    await assert.rejects(p);
    await sleep(3500);
    assert.equal((await simStats(sim)).calls[route] || 0, before + 1,
      'no Klaviyo request after the cancellation');
    assert.match(restd.stderr(), /"event":"call_cancelled"/);
  });

  test('DELETE ends the session', async () => {
    const sid = transport.sessionId;
    await transport.terminateSession();
    const r = await request(restd.port, { headers: mcpHeaders({ 'Mcp-Session-Id': sid }),
      body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
    assert.equal(r.status, 404);
  });
});

describe('the SDK v2 client (@modelcontextprotocol/client)', () => {
  let client;

  before(async () => {
    const transport = new v2.StreamableHTTPClientTransport(new URL(restd.url),
      { requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } } });
    client = new v2.Client({ name: 'klaviyo-http-v2', version: '1.0.0' });
    await client.connect(transport);
  });
  after(async () => client?.close());

  test('connect, list, every tool, progress', async () => {
    assert.equal(client.getServerVersion().name, 'klaviyo-mcp');
    const { tools } = await client.listTools();
    assert.equal(tools.length, 12);
    await checkAllTools((name, args) => client.callTool({ name, arguments: args }), tools);
    const seen = [];
    const res = await client.callTool({ name: 'klaviyo_get_performance_over_time',
      arguments: { account: 'kiwi', entity: 'flow', interval: 'weekly',
        start_date: '2025-05-03', end_date: '2025-06-13' } },
    { onprogress: (p) => seen.push(p) });
    assert.equal(res.isError, false);
    assert.ok(seen.length >= 1, JSON.stringify(seen));
  });

  test('cancelling a call stops it before its next Klaviyo request', async () => {
    const route = 'POST /api/campaign-values-reports';
    const before = (await simStats(sim)).calls[route] || 0;
    await simFault(sim, { method: 'POST', path: '/api/campaign-values-reports', count: 1,
      mode: 'delay', delay_ms: 2000 });
    const ac = new AbortController();
    const p = client.callTool({ name: 'klaviyo_get_campaign_performance',
      arguments: { account: 'kiwi', start_date: '2020-01-01', end_date: '2022-12-30' } },
    { signal: ac.signal });
    await waitFor(async () => ((await simStats(sim)).calls[route] || 0) > before,
      { what: 'the first report to reach the simulator' });
    ac.abort();
    await assert.rejects(p);
    await sleep(3500);
    assert.equal((await simStats(sim)).calls[route] || 0, before + 1);
  });
});

// One 2026-07-28 request through the v2 SDK's StreamableHTTPClientTransport (its Client
// negotiates 2025-11-25 with initialize; the transport carries stateless requests as they
// are): the protocol version header, Mcp-Method and Mcp-Name as the revision requires.
async function v2Stateless(method, params = {}, name) {
  const t = new v2.StreamableHTTPClientTransport(new URL(restd.url), { requestInit: { headers: {
    Authorization: `Bearer ${TOKEN}`, 'Mcp-Method': method, ...(name ? { 'Mcp-Name': name } : {}),
  } } });
  const got = [];
  const done = new Promise((resolve, reject) => {
    t.onmessage = (m) => {
      got.push(m);
      if (m.id === 'x') resolve();
    };
    t.onerror = reject;
  });
  await t.start();
  t.setProtocolVersion(STATELESS);
  await t.send({ jsonrpc: '2.0', id: 'x', method,
    params: { ...params, _meta: meta(params._meta ?? {}) } });
  await done;
  await t.close();
  return got;
}

describe('2026-07-28 through the v2 SDK transport', () => {
  test('server/discover, tools/list and a tool call with progress, no session', async () => {
    const [d] = await v2Stateless('server/discover');
    assert.ok(d.result.supportedVersions.includes(STATELESS), JSON.stringify(d));
    assert.equal(d.result.resultType, 'complete');
    const [l] = await v2Stateless('tools/list');
    assert.equal(l.result.tools.length, 12);
    const args = { account: 'kiwi', start_date: '2025-02-01', end_date: '2025-02-21' };
    const msgs = await v2Stateless('tools/call', { name: 'klaviyo_get_list_growth',
      arguments: args, _meta: { progressToken: 'v2' } }, 'klaviyo_get_list_growth');
    const last = msgs.at(-1);
    assert.equal(last.result.isError, false, JSON.stringify(last).slice(0, 400));
    assert.equal(last.result.resultType, 'complete');
    assert.ok(msgs.slice(0, -1).every((m) => m.method === 'notifications/progress'));
    const rest = await restCall(env.KLAVIYO_MCP_SOCKET, 'klaviyo_get_list_growth', args);
    assert.deepEqual(last.result.structuredContent.data, rest.body.data);
  });
});

describe('2026-07-28 over raw HTTP: stateless, per-request _meta, mirrored headers', () => {
  test('server/discover and tools/list need no session and carry resultType', async () => {
    const d = await request(restd.port, { headers: statelessHeaders('server/discover'),
      body: { jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: meta() } } });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.headers['mcp-session-id'], undefined);
    assert.ok(d.body.result.supportedVersions.includes(STATELESS));
    assert.equal(d.body.result.resultType, 'complete');
    assert.equal(d.body.result._meta[META_SERVER].name, 'klaviyo-mcp');
    const l = await request(restd.port, { headers: statelessHeaders('tools/list'),
      body: { jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: meta() } } });
    assert.equal(l.body.result.tools.length, 12);
    assert.equal(typeof l.body.result.ttlMs, 'number');
  });

  test('tools/call answers on an SSE stream with progress, then the result', async () => {
    const args = { account: 'acme', start_date: '2025-02-01', end_date: '2025-02-20' };
    const r = await request(restd.port, {
      headers: statelessHeaders('tools/call', 'klaviyo_get_flow_performance'),
      body: { jsonrpc: '2.0', id: 'c', method: 'tools/call', params: {
        name: 'klaviyo_get_flow_performance', arguments: args,
        _meta: meta({ progressToken: 'p' }) } } });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    const last = r.events.at(-1);
    assert.equal(last.id, 'c');
    assert.equal(last.result.resultType, 'complete');
    assert.ok(r.events.slice(0, -1).every((e) => e.method === 'notifications/progress'));
    const rest = await restCall(env.KLAVIYO_MCP_SOCKET, 'klaviyo_get_flow_performance', args);
    assert.deepEqual(last.result.structuredContent.data, rest.body.data);
  });

  test('headers must mirror the body: -32020; versions -32022; methods 404', async () => {
    const call = { jsonrpc: '2.0', id: 3, method: 'tools/call',
      params: { name: 'klaviyo_list_accounts', arguments: {}, _meta: meta() } };
    const noName = await request(restd.port, { headers: statelessHeaders('tools/call'),
      body: call });
    assert.equal(noName.status, 400);
    assert.equal(noName.body.error.code, -32020);
    const wrongName = await request(restd.port,
      { headers: statelessHeaders('tools/call', 'klaviyo_get_flows'), body: call });
    assert.equal(wrongName.body.error.code, -32020);
    const b64 = Buffer.from('klaviyo_list_accounts').toString('base64');
    const encoded = await request(restd.port,
      { headers: statelessHeaders('tools/call', `=?base64?${b64}?=`), body: call });
    assert.equal(encoded.status, 200, encoded.text);
    const noVersion = await request(restd.port, { headers: mcpHeaders({ 'Mcp-Method': 'tools/call',
      'Mcp-Name': 'klaviyo_list_accounts' }), body: call });
    assert.equal(noVersion.body.error.code, -32020);
    const v = await request(restd.port, { headers: mcpHeaders({ 'MCP-Protocol-Version': '2099-01-01',
      'Mcp-Method': 'ping' }), body: { jsonrpc: '2.0', id: 4, method: 'ping',
      params: { _meta: meta({ [Object.keys(meta())[0]]: '2099-01-01' }) } } });
    assert.equal(v.status, 400);
    assert.equal(v.body.error.code, -32022);
    assert.ok(v.body.error.data.supported.includes(STATELESS));
    const m = await request(restd.port, { headers: statelessHeaders('prompts/list'),
      body: { jsonrpc: '2.0', id: 5, method: 'prompts/list', params: { _meta: meta() } } });
    assert.equal(m.status, 404);
    assert.equal(m.body.error.code, -32601);
  });
});

describe('refusals, each with the spec status', () => {
  const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };

  test('missing and wrong token: 401 with WWW-Authenticate', async () => {
    const none = await request(restd.port, { headers: { Accept: 'application/json, text/event-stream',
      'Content-Type': 'application/json' }, body: INIT() });
    assert.equal(none.status, 401);
    assert.match(none.headers['www-authenticate'], /^Bearer /);
    const wrong = await request(restd.port, { headers: mcpHeaders({}, 'not-a-token'), body: INIT() });
    assert.equal(wrong.status, 401);
    assert.doesNotMatch(wrong.text, /not-a-token/);
  });

  test('bad Origin or Host: 403 (DNS rebinding); loopback Origins pass', async () => {
    for (const origin of ['http://evil.example.com', 'null', 'http://localhost.evil.com']) {
      const r = await request(restd.port, { headers: mcpHeaders({ Origin: origin }), body: INIT() });
      assert.equal(r.status, 403, origin);
    }
    const host = await request(restd.port, { headers: mcpHeaders({ Host: 'evil.example.com' }),
      body: INIT() });
    assert.equal(host.status, 403);
    const ok = await request(restd.port, { headers: mcpHeaders({
      Origin: `http://localhost:${restd.port}` }), body: INIT() });
    assert.equal(ok.status, 200);
  });

  test('wrong Accept 406, wrong Content-Type 415, oversized 413, malformed 400', async () => {
    const acc = await request(restd.port, { headers: mcpHeaders({ Accept: 'application/json' }),
      body: INIT() });
    assert.equal(acc.status, 406);
    const ct = await request(restd.port, { headers: mcpHeaders({ 'Content-Type': 'text/plain' }),
      body: INIT() });
    assert.equal(ct.status, 415);
    const big = await request(restd.port, { headers: mcpHeaders(),
      body: JSON.stringify({ ...INIT(), pad: 'x'.repeat(70000) }) });
    assert.equal(big.status, 413);
    const bad = await request(restd.port, { headers: mcpHeaders(), body: '{"jsonrpc":' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, -32700);
    assert.equal('id' in bad.body, false);
    const batch = await request(restd.port, { headers: mcpHeaders(), body: [ping] });
    assert.equal(batch.status, 400);
  });

  test('sessions: missing 400, unknown 404, another token 404, GET 405', async () => {
    const none = await request(restd.port, { headers: mcpHeaders(), body: ping });
    assert.equal(none.status, 400);
    const unknown = await request(restd.port, { headers: mcpHeaders({
      'Mcp-Session-Id': '0123456789abcdef0123456789abcdef' }), body: ping });
    assert.equal(unknown.status, 404);
    const sid = await session(TOKEN);
    const mine = await request(restd.port, { headers: mcpHeaders({ 'Mcp-Session-Id': sid,
      'MCP-Protocol-Version': '2025-11-25' }), body: ping });
    assert.equal(mine.status, 200);
    assert.deepEqual(mine.body.result, {});
    const theirs = await request(restd.port, { headers: mcpHeaders({ 'Mcp-Session-Id': sid },
      TOKEN2), body: ping });
    assert.equal(theirs.status, 404);
    const wrongVersion = await request(restd.port, { headers: mcpHeaders({ 'Mcp-Session-Id': sid,
      'MCP-Protocol-Version': '2025-06-18' }), body: ping });
    assert.equal(wrongVersion.status, 400);
    const get = await request(restd.port, { method: 'GET', headers: mcpHeaders({
      Accept: 'text/event-stream', 'Mcp-Session-Id': sid }) });
    assert.equal(get.status, 405);
    const note = await request(restd.port, { headers: mcpHeaders({ 'Mcp-Session-Id': sid }),
      body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
    assert.equal(note.status, 202);
    assert.equal(note.text, '');
  });

  test('a client that disconnects mid-stream: the call stops, nothing is left running',
    async () => {
      const sid = await session();
      const route = 'POST /api/campaign-values-reports';
      const before = (await simStats(sim)).calls[route] || 0;
      await simFault(sim, { method: 'POST', path: '/api/campaign-values-reports', count: 1,
        mode: 'delay', delay_ms: 2000 });
      const body = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: {
        name: 'klaviyo_get_campaign_performance',
        arguments: { account: 'kiwi', start_date: '2021-02-01', end_date: '2023-12-30' } } });
      const req = http.request({ host: '127.0.0.1', port: restd.port, path: '/mcp',
        method: 'POST', agent: false, headers: mcpHeaders({ 'Mcp-Session-Id': sid }) });
      req.on('error', () => {});
      req.end(body);
      await waitFor(async () => ((await simStats(sim)).calls[route] || 0) > before,
        { what: 'the first report to reach the simulator' });
      req.destroy();
      await sleep(3500);
      assert.equal((await simStats(sim)).calls[route] || 0, before + 1);
      const health = await restGet(env.KLAVIYO_MCP_SOCKET, '/health');
      assert.equal(health.body.in_flight, 0);
      assert.match(restd.stderr(), /"closed_by":"client"/);
    });
});

describe('the MCP Inspector CLI over HTTP', () => {
  const cli = path.join(here, 'node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js');
  const run = (args) => new Promise((resolve) => {
    execFile(process.execPath, [cli, '--cli', restd.url, '--transport', 'http',
      '--header', `Authorization: Bearer ${TOKEN}`, ...args],
    { timeout: 60000, env: { ...process.env, HOME: dir } },
    (err, stdout, stderr) => resolve({ err, stdout, stderr }));
  });

  test('lists the tools and calls one', async () => {
    const list = await run(['--method', 'tools/list']);
    assert.equal(list.err, null, list.stderr);
    assert.equal(JSON.parse(list.stdout).tools.length, 12);
    const call = await run(['--method', 'tools/call', '--tool-name', 'klaviyo_list_accounts']);
    assert.equal(call.err, null, call.stderr);
    const res = JSON.parse(call.stdout);
    assert.equal(res.isError, false);
    assert.ok(res.structuredContent.data.accounts.some((a) => a.name === 'acme'));
  });
});

describe('sessions across workers', () => {
  test('a session made on one worker is known to every worker', async () => {
    const two = await startHttpRestd(env, { workers: 2,
      extra: { KLAVIYO_MCP_SOCKET: path.join(dir, 'run', 'two.sock') } });
    try {
      const r = await request(two.port, { headers: mcpHeaders(), body: INIT() });
      const sid = r.headers['mcp-session-id'];
      // each request on a new connection, taken by whichever worker accepts first
      for (let i = 0; i < 20; i++) {
        const p = await request(two.port, { headers: mcpHeaders({ 'Mcp-Session-Id': sid }),
          body: { jsonrpc: '2.0', id: i, method: 'ping' } });
        assert.equal(p.status, 200, p.text);
      }

      // notifications/cancelled on its own connection, whichever worker takes it, stops the
      // call before its next Klaviyo request; its stream ends without a response
      const route = 'POST /api/campaign-values-reports';
      const before = (await simStats(sim)).calls[route] || 0;
      await simFault(sim, { method: 'POST', path: '/api/campaign-values-reports', count: 1,
        mode: 'delay', delay_ms: 2000 });
      const call = request(two.port, { headers: mcpHeaders({ 'Mcp-Session-Id': sid }),
        body: { jsonrpc: '2.0', id: 'long', method: 'tools/call', params: {
          name: 'klaviyo_get_campaign_performance',
          arguments: { account: 'nosms', start_date: '2021-03-01', end_date: '2023-12-30' } } } });
      await waitFor(async () => ((await simStats(sim)).calls[route] || 0) > before,
        { what: 'the first report to reach the simulator' });
      const note = await request(two.port, { headers: mcpHeaders({ 'Mcp-Session-Id': sid }),
        body: { jsonrpc: '2.0', method: 'notifications/cancelled',
          params: { requestId: 'long', reason: 'test' } } });
      assert.equal(note.status, 202);
      const r2 = await call;
      assert.equal(r2.status, 200);
      assert.ok(!r2.events.some((e) => e.id === 'long'), r2.text.slice(0, 500));
      await sleep(2500);
      assert.equal((await simStats(sim)).calls[route] || 0, before + 1);
      assert.match(two.stderr(), /notifications\/cancelled: the call/);
    } finally {
      const end = await two.stop();
      assert.deepEqual(end, { code: 0, signal: null });
    }
  });
});
