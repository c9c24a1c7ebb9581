// demo.test.mjs — the demo reaches Claude: ./scripts/run with no Klaviyo account configured
// serves the simulator's demo accounts and prints the MCP configuration that reaches it; a
// klaviyo-mcp started exactly that way (the official SDK client's StdioClientTransport, with
// a minimal environment as Claude Desktop gives) answers from the demo accounts through the
// demo's klaviyo-restd, every answer carrying the demo warning.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { BIN, alive, children, descendants, killAll, rmtree, tmpdir, waitFor } from './lib.mjs';

const top = process.env.KM_TOP_SRCDIR;
const build = path.dirname(BIN.mcp);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

describe('the demo reaches Claude', { skip: !top && 'KM_TOP_SRCDIR is not set' }, () => {
  let dir;
  let run;
  let client;
  let out = '';
  let err = '';

  after(async () => {
    await client?.close();
    if (run && run.exitCode === null) run.kill('SIGTERM');
    killAll();
    if (dir) rmtree(dir);
  });

  test('./scripts/run prints a configuration that reaches the demo', async () => {
    dir = tmpdir('demo');
    const port = await freePort();
    const home = {
      PATH: process.env.PATH,
      HOME: dir,
      XDG_CONFIG_HOME: path.join(dir, 'xdg-config'),
      XDG_CACHE_HOME: path.join(dir, 'xdg-cache'),
      XDG_RUNTIME_DIR: path.join(dir, 'run'),
    };
    fs.mkdirSync(home.XDG_RUNTIME_DIR, { mode: 0o700 });
    const san = {};
    for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) {
      if (process.env[k]) san[k] = process.env[k];
    }
    run = spawn('sh', [path.join(top, 'scripts', 'run')], {
      env: { ...home, ...san, KLAVIYO_MCP_BUILD: build, REST_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    run.stdout.on('data', (c) => { out += c.toString('utf8'); });
    run.stderr.on('data', (c) => { err += c.toString('utf8'); });
    await waitFor(() => /"event":"worker_started"/.test(err) && /claude mcp add/.test(out),
      { timeout: 30000, what: `the demo to start\n${out}\n${err.slice(-2000)}` });

    // the printed block is the file it names, and it is all a client needs
    assert.match(out, /DEMO MODE/);
    const file = path.join(build, 'demo', 'mcp.json');
    const conf = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.ok(out.includes(fs.readFileSync(file, 'utf8').trim()), out);
    const server = conf.mcpServers['klaviyo-api'];
    assert.ok(path.isAbsolute(server.command) && fs.existsSync(server.command), server.command);
    assert.deepEqual(Object.keys(server.env), ['XDG_CONFIG_HOME']);

    // started the way Claude Desktop starts it: the command, its args, its env, and little else
    const transport = new StdioClientTransport({ command: server.command, args: server.args,
      env: { PATH: process.env.PATH, HOME: dir, ...san, ...server.env }, cwd: dir,
      stderr: 'pipe' });
    let shimErr = '';
    transport.stderr.on('data', (c) => { shimErr += c.toString('utf8'); });
    client = new Client({ name: 'klaviyo-mcp-demo-test', version: '1.0.0' });
    await client.connect(transport);
    assert.doesNotMatch(client.getInstructions(), /CONFIG_ERROR/);

    const accounts = await client.callTool({ name: 'klaviyo_list_accounts', arguments: {} });
    assert.equal(accounts.isError, false, JSON.stringify(accounts.content));
    assert.deepEqual(accounts.structuredContent.data.accounts.map((a) => a.name),
      ['acme', 'kiwi', 'nosms']);
    assert.ok(accounts.structuredContent.data.accounts.every((a) => /\(demo\)/.test(a.label)));
    const flows = await client.callTool({ name: 'klaviyo_get_flows',
      arguments: { account: 'acme' } });
    assert.equal(flows.isError, false, JSON.stringify(flows.content));
    assert.ok(flows.structuredContent.data.flows.length > 0);
    assert.ok(flows.structuredContent.warnings.some((w) => /^Demo data/.test(w)),
      JSON.stringify(flows.structuredContent.warnings));
    // through the demo's own klaviyo-restd: the shim started no service of its own
    assert.deepEqual(children(transport.pid), [], shimErr.slice(-2000));
    assert.match(shimErr, /"event":"restd_shared"/);
    await client.close();
    client = null;

    // Ctrl-C (SIGINT to the script): nothing it started outlives it
    const tree = descendants(run.pid);
    assert.ok(tree.length >= 2, 'the simulator and klaviyo-restd');
    run.kill('SIGINT');
    await waitFor(() => run.exitCode !== null || run.signalCode !== null,
      { timeout: 15000, what: 'scripts/run to stop' });
    await waitFor(() => tree.every((pid) => !alive(pid)),
      { timeout: 15000, what: 'everything scripts/run started to stop' });
  });
});
