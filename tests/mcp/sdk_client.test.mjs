// sdk_client.test.mjs — klaviyo-mcp driven by the official MCP TypeScript SDK client
// (@modelcontextprotocol/sdk, v1 line: the handshake revisions) over StdioClientTransport,
// the way Claude Desktop and Claude Code start it: no service running, so the shim starts its
// private klaviyo-restd. Every tool is called against the simulator; each structuredContent is
// validated against the tool's outputSchema and its `data` compared with the REST answer for
// the same arguments on the same Unix socket.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import Ajv from 'ajv';

import {
  BIN, alive, children, cmdline, killAll, restCall, restGet, rmtree, serviceEnv, startSim,
  tmpdir, toolArgs, waitGone,
} from './lib.mjs';

describe('klaviyo-mcp with the MCP SDK client', () => {
  let dir;
  let sim;
  let env;
  let client;
  let transport;
  let stderr = '';
  let tools;
  let restd = 0;

  before(async () => {
    dir = tmpdir('sdk');
    sim = await startSim(dir);
    env = serviceEnv(sim, dir);
    transport = new StdioClientTransport({
      command: BIN.mcp, args: [], env, cwd: dir, stderr: 'pipe',
    });
    transport.stderr.on('data', (c) => { stderr += c.toString('utf8'); });
    client = new Client({ name: 'klaviyo-mcp-sdk-test', version: '1.0.0' });
    await client.connect(transport);
  });

  after(async () => {
    await client?.close();
    if (restd) await waitGone(restd);
    await sim?.stop();
    killAll();
    if (dir) rmtree(dir);
  });

  test('initialize negotiates the SDK revision and describes the server', () => {
    const info = client.getServerVersion();
    assert.equal(info.name, 'klaviyo-mcp');
    assert.equal(typeof info.version, 'string');
    assert.equal(typeof info.title, 'string');
    assert.deepEqual(client.getServerCapabilities().tools, { listChanged: false });
    const text = client.getInstructions();
    assert.match(text, /klaviyo_list_accounts first/);
    assert.match(text, /timeframe/);
    assert.match(text, /start_date/);
    assert.match(text, /timezone/);
    assert.doesNotMatch(text, /CONFIG_ERROR/);
  });

  test('tools/list is the service registry, in order, read-only and open-world', async () => {
    ({ tools } = await client.listTools());
    const rest = await restGet(env.KLAVIYO_MCP_SOCKET, '/v1/tools');
    assert.equal(rest.status, 200);
    assert.deepEqual(tools.map((t) => t.name), rest.body.tools.map((t) => t.name));
    assert.equal(tools.length, 11);
    for (const t of tools) {
      const r = rest.body.tools.find((x) => x.name === t.name);
      assert.deepEqual(t.inputSchema, r.inputSchema, t.name);
      assert.deepEqual(t.outputSchema, r.outputSchema, t.name);
      assert.equal(t.title, r.title);
      assert.equal(t.description, r.description);
      assert.equal(t.annotations.readOnlyHint, true);
      assert.equal(t.annotations.openWorldHint, true);
    }
    // the shim started its private service, one worker, socket only
    restd = children(transport.pid)
      .find((c) => alive(c) && (cmdline(c)[0] || '').endsWith('klaviyo-restd'));
    assert.ok(restd, 'klaviyo-mcp started a private klaviyo-restd');
  });

  test('every tool answers, matches its outputSchema and equals the REST answer', async () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    const flows = await client.callTool({ name: 'klaviyo_get_flows',
      arguments: { account: 'acme' } });
    const flowId = flows.structuredContent.data.flows[0].flow_id;
    const args = toolArgs(flowId);
    assert.deepEqual(Object.keys(args).sort(), tools.map((t) => t.name).sort());

    for (const tool of tools) {
      const res = await client.callTool({ name: tool.name, arguments: args[tool.name] });
      assert.equal(res.isError, false, `${tool.name}: ${res.content?.[0]?.text}`);
      const sc = res.structuredContent;
      const validate = ajv.compile(tool.outputSchema);
      assert.ok(validate(sc), `${tool.name}: ${ajv.errorsText(validate.errors)}`);
      // the text block is the same envelope, readable
      assert.equal(res.content[0].type, 'text');
      assert.deepEqual(JSON.parse(res.content[0].text), sc);
      assert.match(res.content[0].text, /\n {2}"data": \{/);
      const rest = await restCall(env.KLAVIYO_MCP_SOCKET, tool.name, args[tool.name]);
      assert.equal(rest.status, 200, `${tool.name}: ${rest.text}`);
      assert.deepEqual(sc.data, rest.body.data, `${tool.name}: MCP and REST data differ`);
      assert.deepEqual(sc.metadata.period, rest.body.metadata.period);
    }
  });

  test('a long call reports progress through notifications/progress', async () => {
    const seen = [];
    const res = await client.callTool({
      name: 'klaviyo_get_performance_over_time',
      arguments: { account: 'kiwi', entity: 'campaign', interval: 'weekly',
        start_date: '2025-05-01', end_date: '2025-06-11' },
    }, undefined, { onprogress: (p) => seen.push(p) });
    assert.equal(res.isError, false, res.content?.[0]?.text);
    assert.ok(seen.length >= 2, `progress notifications: ${JSON.stringify(seen)}`);
    for (let i = 0; i < seen.length; i++) {
      assert.match(seen[i].message, /^Klaviyo call \d+( of \d+)?$/);
      if (i > 0) assert.ok(seen[i].progress > seen[i - 1].progress, 'progress increases');
      if (seen[i].total !== undefined) assert.ok(seen[i].progress <= seen[i].total);
    }
  });

  test('a tool error is a result with isError, the code and the message', async () => {
    const res = await client.callTool({ name: 'klaviyo_get_flows',
      arguments: { account: 'nope' } });
    // no structuredContent on errors: the SDK would hold it to the success outputSchema
    assert.equal(res.isError, true);
    assert.equal(res.structuredContent, undefined);
    assert.match(res.content[0].text, /^UNKNOWN_ACCOUNT: unknown account 'nope'/);
    assert.match(res.content[0].text,
      /\ndetails: \{"available_accounts":\["acme","kiwi","nosms"\]\}/);

    const bad = await client.callTool({ name: 'klaviyo_get_campaign_performance',
      arguments: { account: 'acme', timeframe: 'last_7_days', start_date: '2025-01-01',
        end_date: '2025-01-02' } });
    assert.equal(bad.isError, true);
    assert.match(bad.content[0].text, /^INVALID_ARGUMENT: /);

    // an unknown tool is a protocol error (-32602), as the spec's tools page says
    await assert.rejects(client.callTool({ name: 'klaviyo_no_such_tool', arguments: {} }),
      (e) => e.code === -32602 && /Unknown tool/.test(e.message));
  });

  test('ping answers', async () => {
    assert.deepEqual(await client.ping(), {});
  });

  test('nothing but protocol reaches stdout and logs reach stderr', () => {
    // the SDK would have failed on a non-JSON stdout line; the logs are JSON lines on stderr
    const lines = stderr.split('\n').filter(Boolean);
    const events = lines.map((l) => {
      try {
        return JSON.parse(l).event;
      } catch {
        return null;
      }
    });
    assert.ok(events.includes('shim_started'));
    assert.ok(events.includes('restd_ready'));
    assert.ok(!stderr.includes(env.KLAVIYO_ACME_KEY), 'no API key in the logs');
  });
});
