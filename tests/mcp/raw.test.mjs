// raw.test.mjs — klaviyo-mcp driven by raw JSON-RPC lines: the stateless 2026-07-28 flow
// (server/discover, tools/list and tools/call with _meta), every kind of bad input, batches,
// version negotiation, configuration errors, cancellation, a service killed mid-call, and the
// private service's start and stop (no klaviyo-restd left behind after stdin closes, SIGTERM
// or SIGKILL of the shim).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  BIN, META_SERVER, STATELESS, Shim, alive, descendants, healthy, initialize, killAll, meta,
  rmtree, serviceEnv, simFault, simStats, startRestd, startSim, tmpdir, waitFor, waitGone,
} from './lib.mjs';

let sim;
let simDir;
const dirs = [];

function newDir(tag) {
  const d = tmpdir(tag);
  dirs.push(d);
  return d;
}

before(async () => {
  simDir = newDir('sim');
  sim = await startSim(simDir);
});

after(async () => {
  await sim?.stop();
  killAll();
  for (const d of dirs) rmtree(d);
});

// A shim on a private directory (cwd too, so no stray .env is read).
function shim(tag, extra = {}, opts = {}) {
  const dir = newDir(tag);
  const env = serviceEnv(sim, dir, extra);
  return { dir, env, sh: new Shim(env, { cwd: dir, ...opts }) };
}

let probes = 0;

// Write `raw` (a line, or bytes that end with a newline), then a ping; return every message
// that arrived before the ping's answer. Proves the stream is still in step.
async function probe(sh, raw) {
  const id = `probe-${++probes}`;
  if (typeof raw === 'string') sh.write(raw.endsWith('\n') ? raw : `${raw}\n`);
  else sh.write(raw);
  sh.send({ jsonrpc: '2.0', id, method: 'ping' });
  const before = [];
  for (;;) {
    const m = await sh.next();
    if (m && m.id === id && !Array.isArray(m)) {
      assert.deepEqual(m.result, {}, 'the ping after the bad input is answered');
      return before;
    }
    before.push(m);
  }
}

// The one message of `msgs`: an error with `code` answering `id`. Without an id (the message's
// id could not be read) the answer has no id member at all -- MCP 2025-11-25 schema:
// "export interface JSONRPCErrorResponse { jsonrpc: typeof JSONRPC_VERSION; id?: RequestId;
// error: Error; }" and "export type RequestId = string | number;" (never null).
function onlyError(msgs, code, id) {
  assert.equal(msgs.length, 1, JSON.stringify(msgs));
  assert.equal(msgs[0].error?.code, code, JSON.stringify(msgs[0]));
  if (id === undefined) assert.ok(!('id' in msgs[0]), JSON.stringify(msgs[0]));
  else assert.equal(msgs[0].id, id);
  assert.equal(typeof msgs[0].error.message, 'string');
  return msgs[0];
}

async function finish(sh) {
  sh.close();
  const r = await sh.wait();
  assert.deepEqual(sh.stray, [], 'every stdout line is a JSON-RPC message');
  assert.equal(r.code, 0, sh.err.slice(-3000));
  return r;
}

describe('the stateless revision 2026-07-28', () => {
  test('server/discover advertises versions, capabilities, identity and instructions', async () => {
    const { sh } = shim('discover');
    const r = await sh.request({ jsonrpc: '2.0', id: 1, method: 'server/discover',
      params: { _meta: meta() } });
    const res = r.result;
    assert.ok(res.supportedVersions.includes(STATELESS));
    for (const v of ['2025-11-25', '2025-06-18', '2025-03-26']) {
      assert.ok(res.supportedVersions.includes(v), v);
    }
    assert.deepEqual(res.capabilities, { tools: { listChanged: false } });
    assert.equal(res.serverInfo.name, 'klaviyo-mcp');
    assert.match(res.instructions, /klaviyo_list_accounts/);
    assert.equal(res.resultType, 'complete');
    assert.ok(Number.isInteger(res.ttlMs) && res.ttlMs >= 0);
    assert.ok(['public', 'private'].includes(res.cacheScope));
    assert.equal(res._meta[META_SERVER].name, 'klaviyo-mcp');
    await finish(sh);
  });

  test('tools/list and tools/call work from _meta alone, with resultType', async () => {
    const { sh } = shim('stateless');
    const list = (await sh.request({ jsonrpc: '2.0', id: 2, method: 'tools/list',
      params: { _meta: meta() } })).result;
    assert.equal(list.resultType, 'complete');
    assert.ok(list.ttlMs > 0);
    assert.equal(list.cacheScope, 'public');
    assert.equal(list._meta[META_SERVER].name, 'klaviyo-mcp');
    assert.equal(list.tools.length, 12);
    for (const t of list.tools) {
      // JSON.parse keeps the wire order of keys
      assert.deepEqual(Object.keys(t),
        ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'], t.name);
      assert.equal(t.annotations.readOnlyHint, true);
      assert.equal(t.annotations.openWorldHint, true);
    }

    sh.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: {
      name: 'klaviyo_get_performance_over_time',
      arguments: { account: 'acme', entity: 'campaign', interval: 'weekly',
        start_date: '2025-04-01', end_date: '2025-04-28' },
      _meta: meta({ progressToken: 'tok-3' }) } });
    const progress = [];
    let res;
    for (;;) {
      const m = await sh.next();
      if (m.method === 'notifications/progress') {
        progress.push(m.params);
        continue;
      }
      if (m.id === 3) {
        res = m.result;
        break;
      }
    }
    assert.ok(progress.length >= 2, JSON.stringify(progress));
    for (const p of progress) {
      assert.equal(p.progressToken, 'tok-3');
      assert.match(p.message, /^Klaviyo call \d+/);
    }
    assert.equal(res.isError, false, res.content[0].text);
    assert.equal(res.resultType, 'complete');
    assert.equal(res._meta[META_SERVER].name, 'klaviyo-mcp');
    assert.ok(res.structuredContent.data.series);

    const ping = (await sh.request({ jsonrpc: '2.0', id: 4, method: 'ping',
      params: { _meta: meta() } })).result;
    assert.equal(ping.resultType, 'complete');
    await finish(sh);
  });

  test('an unknown protocol version is UnsupportedProtocolVersion (-32022)', async () => {
    const { sh } = shim('version');
    const r = await sh.request({ jsonrpc: '2.0', id: 'v', method: 'tools/list',
      params: { _meta: meta({ 'io.modelcontextprotocol/protocolVersion': '1999-01-01' }) } });
    assert.equal(r.error.code, -32022);
    assert.equal(r.error.data.requested, '1999-01-01');
    assert.ok(r.error.data.supported.includes(STATELESS));
    await finish(sh);
  });

  // 2026-07-28 basic/versioning: "The client SHOULD select a mutually supported version from
  // the supported list and retry the request" -- so `supported` lists only versions that a
  // request of that form can name: a handshake revision needs initialize first.
  test('-32022 lists only versions a retry can use; the retry is served', async () => {
    const { sh } = shim('retry');
    const legacy = await sh.request({ jsonrpc: '2.0', id: 'l', method: 'tools/list',
      params: { _meta: meta({ 'io.modelcontextprotocol/protocolVersion': '2025-11-25' }) } });
    assert.equal(legacy.error.code, -32022);
    assert.equal(legacy.error.data.requested, '2025-11-25');
    assert.deepEqual(legacy.error.data.supported, [STATELESS]);
    for (const v of legacy.error.data.supported) {
      const retry = await sh.request({ jsonrpc: '2.0', id: `retry-${v}`, method: 'tools/list',
        params: { _meta: meta({ 'io.modelcontextprotocol/protocolVersion': v }) } });
      assert.ok(Array.isArray(retry.result?.tools), JSON.stringify(retry).slice(0, 300));
    }
    // after initialize, the negotiated revision may be named too
    await sh.request(initialize('2025-06-18'));
    const other = await sh.request({ jsonrpc: '2.0', id: 'o', method: 'ping',
      params: { _meta: meta({ 'io.modelcontextprotocol/protocolVersion': '2025-11-25' }) } });
    assert.deepEqual(other.error.data.supported, [STATELESS, '2025-06-18']);
    const same = await sh.request({ jsonrpc: '2.0', id: 's', method: 'ping',
      params: { _meta: meta({ 'io.modelcontextprotocol/protocolVersion': '2025-06-18' }) } });
    assert.deepEqual(same.result, {});
    await finish(sh);
  });

  test('missing client capabilities or protocol version are invalid params', async () => {
    const { sh } = shim('metaparams');
    const noCaps = await sh.request({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {
      _meta: { 'io.modelcontextprotocol/protocolVersion': STATELESS } } });
    assert.equal(noCaps.error.code, -32602);
    const noMeta = await sh.request({ jsonrpc: '2.0', id: 2, method: 'server/discover' });
    assert.equal(noMeta.error.code, -32602);
    // stateless requests leave no session behind: a legacy request still needs initialize
    const legacy = await sh.request({ jsonrpc: '2.0', id: 3, method: 'tools/list' });
    assert.equal(legacy.error.code, -32600);
    assert.match(legacy.error.message, /not initialized/);
    await finish(sh);
  });

  test('a stateless request after a legacy initialize is still served statelessly', async () => {
    const { sh } = shim('dual');
    await sh.request(initialize('2025-06-18'));
    const r = await sh.request({ jsonrpc: '2.0', id: 9, method: 'server/discover',
      params: { _meta: meta() } });
    assert.equal(r.result.resultType, 'complete');
    const legacy = await sh.request({ jsonrpc: '2.0', id: 10, method: 'ping' });
    assert.deepEqual(legacy.result, {});
    await finish(sh);
  });
});

describe('the handshake revisions', () => {
  test('initialize answers the client version when supported, else the newest', async () => {
    for (const [asked, want] of [['2025-03-26', '2025-03-26'], ['2025-06-18', '2025-06-18'],
      ['2025-11-25', '2025-11-25'], ['2024-11-05', '2025-11-25'], ['2030-01-01', '2025-11-25']]) {
      const { sh } = shim('negotiate');
      const r = await sh.request(initialize(asked));
      assert.equal(r.result.protocolVersion, want, asked);
      assert.deepEqual(r.result.capabilities, { tools: { listChanged: false } });
      assert.equal(r.result.serverInfo.name, 'klaviyo-mcp');
      assert.equal(r.result.resultType, undefined);
      await finish(sh);
    }
  });

  test('batches are served for 2025-03-26 and refused for later revisions', async () => {
    const { sh } = shim('batch');
    await sh.request(initialize('2025-03-26'));
    sh.send('[{"jsonrpc":"2.0","id":"a","method":"ping"},'
      + '{"jsonrpc":"2.0","method":"notifications/initialized"},'
      + '{"jsonrpc":"2.0","id":"b","method":"tools/call",'
      + '"params":{"name":"klaviyo_list_accounts"}},'
      + '{"jsonrpc":"2.0","id":"c","method":"nope"},'
      + '{"id":"d"}]');
    const batch = await sh.next((m) => Array.isArray(m));
    assert.deepEqual(batch.map((m) => m.id).sort(), ['a', 'b', 'c', 'd']);
    assert.equal(batch.find((m) => m.id === 'b').result.isError, false);
    assert.equal(batch.find((m) => m.id === 'c').error.code, -32601);
    assert.equal(batch.find((m) => m.id === 'd').error.code, -32600);
    // a batch of notifications needs no answer; an empty batch is invalid
    assert.deepEqual(await probe(sh, '[{"jsonrpc":"2.0","method":"notifications/x"}]'), []);
    onlyError(await probe(sh, '[]'), -32600);

    const later = shim('nobatch');
    await later.sh.request(initialize('2025-06-18'));
    const refused = onlyError(await probe(later.sh, '[{"jsonrpc":"2.0","id":1,"method":"ping"}]'),
      -32600);
    assert.match(refused.error.message, /batch/);
    await finish(sh);
    await finish(later.sh);
  });
});

describe('bad input never crashes or hangs the shim', () => {
  test('each bad line gets the right JSON-RPC error and the stream stays in step', async () => {
    const { sh } = shim('bad');
    // requests before initialize
    onlyError(await probe(sh, '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'), -32600, 1);
    onlyError(await probe(sh, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call',
      params: { name: 'klaviyo_list_accounts' } })), -32600, 2);
    // malformed JSON
    onlyError(await probe(sh, '{"jsonrpc":"2.0","id":3,'), -32700);
    onlyError(await probe(sh, 'not json at all'), -32700);
    onlyError(await probe(sh, '{"jsonrpc":"2.0","id":3,"method":"ping"} trailing'), -32700);
    onlyError(await probe(sh, `${'['.repeat(200)}${']'.repeat(200)}`), -32700);
    onlyError(await probe(sh, 'null'), -32700);
    // a 5 MB line
    const pad = 'x'.repeat(5 << 20);
    const big = `{"jsonrpc":"2.0","id":4,"method":"ping","params":{"pad":"${pad}"}}`;
    const tooLong = onlyError(await probe(sh, big), -32700);
    assert.match(tooLong.error.message, /longer than/);
    // binary bytes, bad UTF-8, a NUL byte
    const bin = Buffer.alloc(4096);
    for (let i = 0; i < bin.length; i++) {
      const b = (i * 37 + 11) % 256;
      bin[i] = b === 10 ? 0 : b;   // every byte value but the newline
    }
    bin[bin.length - 1] = 10;
    onlyError(await probe(sh, bin), -32700);
    onlyError(await probe(sh, Buffer.concat([
      Buffer.from('{"jsonrpc":"2.0","id":5,"method":"ping","params":{"s":"'),
      Buffer.from([0xff, 0xfe]), Buffer.from('"}}\n')])), -32700);
    onlyError(await probe(sh, Buffer.from('{"jsonrpc":"2.0","id":6,\0"method":"ping"}\n')), -32700);
    // invalid requests
    onlyError(await probe(sh, '{"jsonrpc":"2.0","id":7,"method":"no/such/method"}'), -32601, 7);
    onlyError(await probe(sh, '{"id":8,"method":"ping"}'), -32600, 8);
    onlyError(await probe(sh, '{"jsonrpc":"2.0","id":null,"method":"ping"}'), -32600);
    onlyError(await probe(sh, '{"jsonrpc":"2.0","id":9.5,"method":"ping"}'), -32600);
    onlyError(await probe(sh, '{"jsonrpc":"2.0","id":10}'), -32600, 10);
    onlyError(await probe(sh, '42'), -32600);
    onlyError(await probe(sh, '{"jsonrpc":"2.0","id":11,"method":"tools/call","params":[1]}'),
      -32602, 11);
    onlyError(await probe(sh, '[1,2]'), -32600);
    // notifications and client responses get no answer; blank lines are skipped
    assert.deepEqual(await probe(sh, '{"jsonrpc":"2.0","method":"notifications/whatever"}'), []);
    assert.deepEqual(await probe(sh, '{"jsonrpc":"2.0","method":"x","params":7}'), []);
    assert.deepEqual(await probe(sh, '{"jsonrpc":"2.0","id":12,"result":{}}'), []);
    assert.deepEqual(await probe(sh, '   \r\n\n'), []);

    // after initialize: invalid params and tool errors
    const init = await sh.request(initialize('2025-11-25'));
    assert.equal(init.result.protocolVersion, '2025-11-25');
    sh.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    onlyError(await probe(sh, JSON.stringify(initialize('2025-11-25', 13))), -32600, 13);
    onlyError(await probe(sh, '{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{}}'),
      -32602, 14);
    onlyError(await probe(sh, JSON.stringify({ jsonrpc: '2.0', id: 15, method: 'tools/call',
      params: { name: 'klaviyo_get_flows', arguments: 'acme' } })), -32602, 15);
    onlyError(await probe(sh, JSON.stringify({ jsonrpc: '2.0', id: 16, method: 'tools/list',
      params: { cursor: 'abc' } })), -32602, 16);
    onlyError(await probe(sh, JSON.stringify({ jsonrpc: '2.0', id: 17, method: 'initialize',
      params: {} })), -32602, 17);
    // MCP 2025-11-25 server/tools, Error Handling: "Protocol Errors: Standard JSON-RPC errors
    // for issues like: Unknown tools ..." with the example code -32602 (2026-07-28 the same)
    const odd = onlyError(await probe(sh, JSON.stringify({ jsonrpc: '2.0', id: 18,
      method: 'tools/call', params: { name: '../health', arguments: {} } })), -32602, 18);
    assert.match(odd.error.message, /^Unknown tool/);
    // before the tool list is known the service is asked, and its answer is the same error
    const unknown = onlyError([await sh.request({ jsonrpc: '2.0', id: 19, method: 'tools/call',
      params: { name: 'klaviyo_nope', arguments: {} } })], -32602, 19);
    assert.match(unknown.error.message, /klaviyo_nope/);
    await sh.request({ jsonrpc: '2.0', id: 'known', method: 'tools/list' });
    const listed = onlyError(await probe(sh, JSON.stringify({ jsonrpc: '2.0', id: 21,
      method: 'tools/call', params: { name: 'klaviyo_nope_again', arguments: {} } })), -32602,
    21);
    assert.match(listed.error.message, /^Unknown tool: klaviyo_nope_again/);
    const ok = await sh.request({ jsonrpc: '2.0', id: 20, method: 'tools/call',
      params: { name: 'klaviyo_list_accounts' } });
    assert.equal(ok.result.isError, false);
    assert.deepEqual(ok.result.structuredContent.data.accounts.map((a) => a.name),
      ['acme', 'kiwi', 'nosms']);
    // the text is the service's Markdown summary of the same answer
    assert.match(ok.result.content[0].text, /^## List Klaviyo accounts\n/);
    assert.match(ok.result.content[0].text, /\n- `acme`: /);
    await finish(sh);
  });
});

describe('configuration errors reach the client', () => {
  test('tools answer CONFIG_ERROR with the fix, and no service is started', async () => {
    const dir = newDir('cfgerr');
    const env = serviceEnv(sim, dir);
    delete env.ACCOUNTS_FILE;
    const sh = new Shim(env, { cwd: dir });
    const init = await sh.request(initialize());
    assert.match(init.result.instructions, /CONFIG_ERROR: no accounts\.toml found/);
    const list = await sh.request({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    assert.equal(list.result.tools.length, 1);
    assert.match(list.result.tools[0].description, /CONFIG_ERROR/);
    for (const name of ['klaviyo_list_accounts', 'klaviyo_get_flows']) {
      const r = await sh.request({ jsonrpc: '2.0', id: name, method: 'tools/call',
        params: { name, arguments: {} } });
      assert.equal(r.result.isError, true);
      assert.match(r.result.content[0].text, /^CONFIG_ERROR: no accounts\.toml found/);
    }
    assert.deepEqual(descendants(sh.pid), []);
    await finish(sh);

    const bad = spawnSync(BIN.mcp, ['--check-config'], { env, cwd: dir, encoding: 'utf8' });
    assert.equal(bad.status, 78);
    assert.match(bad.stderr, /CONFIG_ERROR: no accounts\.toml found/);
    assert.equal(bad.stdout, '');
    const good = spawnSync(BIN.mcp, ['--check-config'], { env: serviceEnv(sim, dir), cwd: dir,
      encoding: 'utf8' });
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stderr, /configuration OK \(3 accounts/);
  });

  test('a missing API key variable is a config error naming it', async () => {
    const dir = newDir('nokey');
    const env = serviceEnv(sim, dir);
    delete env.KLAVIYO_KIWI_KEY;
    const sh = new Shim(env, { cwd: dir });
    await sh.request(initialize());
    const r = await sh.request({ jsonrpc: '2.0', id: 2, method: 'tools/call',
      params: { name: 'klaviyo_list_accounts', arguments: {} } });
    assert.equal(r.result.isError, true);
    assert.match(r.result.content[0].text, /^CONFIG_ERROR: .*KLAVIYO_KIWI_KEY/);
    assert.ok(!r.result.content[0].text.includes(env.KLAVIYO_ACME_KEY));
    await finish(sh);
  });
});

// Wait until the call `id` on `sh` has reached the simulator as `route` (its count passed
// `before`); fail at once, with the answer, if the call was answered without getting there.
async function arrived(sh, id, route, before) {
  await waitFor(async () => {
    const early = sh.queue.find((m) => m && m.id === id);
    if (early) {
      throw new Error(`${id} was answered before reaching the simulator: `
        + `${JSON.stringify(early).slice(0, 500)}\n${sh.err.slice(-3000)}`);
    }
    return ((await simStats(sim)).calls[route] || 0) > before;
  }, { what: `${route} to reach the simulator` });
}

// tools/list answered by a private service: the real list, and that service's pid.
async function privateService(sh) {
  const list = await sh.request({ jsonrpc: '2.0', id: 'list', method: 'tools/list' });
  assert.equal(list.result.tools.length, 12, `no service: ${JSON.stringify(list.result.tools)
    .slice(0, 400)}\n${sh.err.slice(-3000)}`);
  const child = sh.restdChild();
  assert.ok(child, `no private klaviyo-restd\n${sh.err.slice(-3000)}`);
  return child;
}

describe('cancellation and a service that goes away', () => {
  test('notifications/cancelled stops the call: no answer, the service hangs up', async () => {
    const { sh } = shim('cancel', { CACHE_TTL_SECONDS: '0' });
    await sh.request(initialize());
    await sh.request({ jsonrpc: '2.0', id: 'warm', method: 'tools/call',
      params: { name: 'klaviyo_list_accounts' } });
    const route = 'GET /api/flows';
    const before = (await simStats(sim)).calls[route] || 0;
    await simFault(sim, { method: 'GET', path: '/api/flows', count: 1, mode: 'delay',
      delay_ms: 2000 });
    sh.send({ jsonrpc: '2.0', id: 'slow', method: 'tools/call', params: {
      name: 'klaviyo_get_flows', arguments: { account: 'nosms' }, _meta: { progressToken: 1 } } });
    await arrived(sh, 'slow', route, before);
    sh.send({ jsonrpc: '2.0', method: 'notifications/cancelled',
      params: { requestId: 'slow', reason: 'the user changed their mind' } });
    // still serving while that unwinds
    const pong = await sh.request({ jsonrpc: '2.0', id: 'after', method: 'ping' });
    assert.deepEqual(pong.result, {});
    await finish(sh);
    const all = sh.drain();
    assert.ok(!all.some((m) => m.id === 'slow'), 'a cancelled call is not answered');
    assert.match(sh.err, /"event":"request_cancelled"/);
    // the private klaviyo-restd saw its client leave (499) before it was stopped
    assert.match(sh.err, /"path":"\/v1\/tools\/klaviyo_get_flows","status":499/);
  });

  test('a service killed mid-call is a tool error; the next call starts a new one', async () => {
    const dir = newDir('killed');
    const env = serviceEnv(sim, dir, { CACHE_TTL_SECONDS: '0' });
    const restd = await startRestd(env);
    const sh = new Shim(env, { cwd: dir });
    await sh.request(initialize());
    const route = 'GET /api/flows';
    const before = (await simStats(sim)).calls[route] || 0;
    await simFault(sim, { method: 'GET', path: '/api/flows', count: 1, mode: 'delay',
      delay_ms: 5000 });
    sh.send({ jsonrpc: '2.0', id: 'doomed', method: 'tools/call', params: {
      name: 'klaviyo_get_flows', arguments: { account: 'kiwi' } } });
    await arrived(sh, 'doomed', route, before);
    assert.equal(sh.restdChild(), undefined, 'the shared service is used');
    await restd.kill9();
    const r = await sh.next((m) => m.id === 'doomed');
    assert.equal(r.result.isError, true);
    assert.equal(r.result.content[0].text, 'UPSTREAM_ERROR: klaviyo-restd closed the '
      + 'connection before it answered (it stopped or restarted; its log says why)');
    // once nothing listens any more (kill9 waits for the master; its worker may still hold
    // the socket for a moment), the shim starts its own service and the call succeeds
    await waitFor(async () => !(await healthy(env.KLAVIYO_MCP_SOCKET)),
      { what: 'the killed service to stop accepting' });
    const again = await sh.request({ jsonrpc: '2.0', id: 'again', method: 'tools/call',
      params: { name: 'klaviyo_list_accounts' } });
    assert.equal(again.result.isError, false, again.result.content?.[0]?.text);
    const child = sh.restdChild();
    assert.ok(child, 'a private klaviyo-restd was started');
    await finish(sh);
    await waitGone(child);
  });
});

describe('the private service', () => {
  test('a shared service is used and never stopped', async () => {
    const dir = newDir('shared');
    const env = serviceEnv(sim, dir);
    const restd = await startRestd(env);
    const sh = new Shim(env, { cwd: dir });
    await sh.request(initialize());
    const r = await sh.request({ jsonrpc: '2.0', id: 1, method: 'tools/call',
      params: { name: 'klaviyo_list_accounts' } });
    assert.equal(r.result.isError, false);
    assert.deepEqual(descendants(sh.pid), []);
    assert.match(sh.err, /"event":"restd_shared"/);
    await finish(sh);
    assert.ok(alive(restd.pid));
    assert.ok(await healthy(env.KLAVIYO_MCP_SOCKET));
    const stopped = await restd.stop();
    assert.equal(stopped.code, 0);
  });

  test('it starts with one worker on the socket and stops when stdin closes', async () => {
    const { sh, env } = shim('private');
    await sh.request(initialize());
    const child = await privateService(sh);
    const tree = [child, ...descendants(child)];
    assert.equal(tree.length, 2, 'the master and one worker');
    assert.ok(await healthy(env.KLAVIYO_MCP_SOCKET));
    await finish(sh);
    for (const pid of tree) assert.ok(!alive(pid), `process ${pid} left behind`);
  });

  test('it dies with a SIGKILLed shim', async () => {
    const { sh } = shim('sigkill');
    await sh.request(initialize());
    const child = await privateService(sh);
    const tree = [child, ...descendants(child)];
    sh.kill('SIGKILL');
    await sh.wait();
    for (const pid of tree) await waitGone(pid);
  });

  test('SIGTERM during a call cancels it and stops the service', async () => {
    const { sh } = shim('sigterm', { CACHE_TTL_SECONDS: '0' });
    await sh.request(initialize());
    const child = await privateService(sh);
    const tree = [child, ...descendants(child)];
    const route = 'GET /api/lists';
    const before = (await simStats(sim)).calls[route] || 0;
    await simFault(sim, { method: 'GET', path: '/api/lists', count: 1, mode: 'delay',
      delay_ms: 3000 });
    sh.send({ jsonrpc: '2.0', id: 'pending', method: 'tools/call', params: {
      name: 'klaviyo_get_list_health', arguments: { account: 'acme' } } });
    await arrived(sh, 'pending', route, before);
    sh.kill('SIGTERM');
    const r = await sh.wait();
    assert.equal(r.code, 0, sh.err.slice(-2000));
    assert.ok(!sh.drain().some((m) => m.id === 'pending'));
    for (const pid of tree) assert.ok(!alive(pid), `process ${pid} left behind`);
  });

  test('an unusable socket path falls back to a private socket', async () => {
    const dir = newDir('fallback');
    const blocker = path.join(dir, 'not-a-dir');
    fs.writeFileSync(blocker, '');
    const env = serviceEnv(sim, dir, { KLAVIYO_MCP_SOCKET: path.join(blocker, 'restd.sock') });
    const sh = new Shim(env, { cwd: dir });
    await sh.request(initialize());
    const r = await sh.request({ jsonrpc: '2.0', id: 1, method: 'tools/call',
      params: { name: 'klaviyo_list_accounts' } });
    assert.equal(r.result.isError, false, r.result.content?.[0]?.text);
    assert.match(sh.err, /"event":"socket_unusable"/);
    const child = sh.restdChild();
    assert.ok(child);
    await finish(sh);
    assert.ok(!alive(child));
    const left = fs.readdirSync(env.XDG_RUNTIME_DIR).filter((f) => f.startsWith('klaviyo-mcp-'));
    assert.deepEqual(left, [], 'the private socket directory is removed');
  });
});
