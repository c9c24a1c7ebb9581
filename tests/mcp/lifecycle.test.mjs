// lifecycle.test.mjs — how a call ends when the world around it does, at Klaviyo's real
// limits (no RATE_LIMIT_SCALE): list health on the demo account acme sizes its 23 lists one
// request a second (the 15-per-minute tier), so the call is alive and calling Klaviyo for about
// a minute, and anything that keeps calling after it should have stopped shows up at once.
//
// - stdin EOF mid-call: the MCP stdio transport says "the client SHOULD ... close the input
//   stream to the server" and the server should exit; the shim cancels the call, the service
//   stops before its next Klaviyo request, and the shim and its private service are gone
//   within a second.
// - the private service's master SIGKILLed mid-call: the call gets a tool error naming that
//   at once, and the next call starts a new service and succeeds.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  Shim, alive, descendants, initialize, killAll, realEnv, rmtree, simStats, startSim, tmpdir,
  waitFor,
} from './lib.mjs';

const ROUTE = 'GET /api/lists/{id}';

let sim;
const dirs = [];

function newDir(tag) {
  const d = tmpdir(tag);
  dirs.push(d);
  return d;
}

before(async () => {
  sim = await startSim(newDir('lsim'));
});

after(async () => {
  await sim?.stop();
  killAll();
  for (const d of dirs) rmtree(d);
});

async function listCalls() {
  return (await simStats(sim)).calls[ROUTE] || 0;
}

// A shim at real limits with its private service, and that service's process tree.
async function shimWithService(tag) {
  const dir = newDir(tag);
  const sh = new Shim(realEnv(sim, dir, { CACHE_TTL_SECONDS: '0' }), { cwd: dir });
  await sh.request(initialize());
  const list = await sh.request({ jsonrpc: '2.0', id: 'list', method: 'tools/list' });
  assert.equal(list.result.tools.length >= 11, true, sh.err.slice(-2000));
  const child = sh.restdChild();
  assert.ok(child, `no private klaviyo-restd\n${sh.err.slice(-2000)}`);
  return { sh, tree: [child, ...descendants(child)] };
}

// Start list health on acme and wait until `n` list sizes have reached the simulator.
async function startListHealth(sh, id, n) {
  const before = await listCalls();
  sh.send({ jsonrpc: '2.0', id, method: 'tools/call', params: {
    name: 'klaviyo_get_list_health', arguments: { account: 'acme' },
    _meta: { progressToken: id } } });
  await waitFor(async () => (await listCalls()) >= before + n,
    { timeout: 30000, what: `${n} list sizes to reach the simulator` });
}

describe('the end of a call', () => {
  test('stdin EOF cancels the call: no Klaviyo request after it, all gone in a second',
    async () => {
      const { sh, tree } = await shimWithService('eof');
      await startListHealth(sh, 'eof-call', 3);
      const t0 = Date.now();
      sh.close();
      const r = await sh.wait(5000);
      const exitMs = Date.now() - t0;
      assert.equal(r.code, 0, sh.err.slice(-2000));
      assert.ok(exitMs < 1000, `the shim took ${exitMs} ms to exit`);
      for (const pid of tree) assert.ok(!alive(pid), `process ${pid} left behind`);
      // the service saw the cancellation: no list size is asked for any more (without it the
      // call would go on at one request a second)
      const atExit = await listCalls();
      await new Promise((res) => setTimeout(res, 3000));
      assert.equal(await listCalls(), atExit, 'Klaviyo requests after stdin closed');
      assert.ok(!sh.drain().some((m) => m.id === 'eof-call'), 'no answer after EOF');
      assert.match(sh.err, /"event":"stdin_closed"/);
    });

  test('a killed private service is a tool error at once; the next call succeeds',
    async () => {
      const { sh, tree } = await shimWithService('kill');
      const [master] = tree;
      await startListHealth(sh, 'doomed', 2);
      const t0 = Date.now();
      process.kill(master, 'SIGKILL');
      const r = await sh.next((m) => m.id === 'doomed', 5000);
      const ms = Date.now() - t0;
      assert.ok(ms < 1500, `the cut call was answered after ${ms} ms`);
      assert.equal(r.result.isError, true);
      assert.match(r.result.content[0].text, new RegExp(
        `^UPSTREAM_ERROR: the private klaviyo-restd \\(pid ${master}\\) was killed by signal 9`));
      // reaped at once (no zombie), and its worker went with it
      await waitFor(() => tree.every((pid) => !alive(pid)), { timeout: 2000,
        what: 'the dead service and its worker to be gone' });
      const atDeath = await listCalls();
      const again = await sh.request({ jsonrpc: '2.0', id: 'again', method: 'tools/call',
        params: { name: 'klaviyo_list_accounts', arguments: {} } });
      assert.equal(again.result.isError, false, again.result.content?.[0]?.text);
      const child = sh.restdChild();
      assert.ok(child && child !== master, 'a new private klaviyo-restd');
      assert.equal(await listCalls(), atDeath, 'the dead service made no more requests');
      sh.close();
      assert.equal((await sh.wait(5000)).code, 0);
      assert.ok(!alive(child));
    });
});
