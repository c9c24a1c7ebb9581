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
    assert.equal(tools.length, 12);
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
      // the text block is the service's Markdown summary; structuredContent has no copy of it
      assert.equal(res.content[0].type, 'text');
      assert.ok(res.content[0].text.startsWith(`## ${tool.title}`), res.content[0].text);
      assert.equal(sc.summary, undefined);
      // the shim passes the service's model view through untouched (answers.test.mjs compares
      // MCP with plain REST for the same explicit arguments)
      const rest = await restCall(env.KLAVIYO_MCP_SOCKET, tool.name, args[tool.name],
        { 'X-Answer-For': 'model' });
      assert.equal(rest.status, 200, `${tool.name}: ${rest.text}`);
      if (tool.name === 'klaviyo_get_budget') {
        // a live reading: the waits shrink between the two calls, the counts do not
        const counts = (d) => d.accounts.map((x) => [x.account, x.report_calls_used_today,
          x.report_calls_left_today, x.daily_report_cap, x.tiers.map((t) => t.tier)]);
        assert.deepEqual(counts(sc.data), counts(rest.body.data), 'budget: MCP and REST differ');
        assert.equal(sc.data.accounts[0].report_calls_used_today,
          sc.data.accounts[0].daily_report_cap - sc.data.accounts[0].report_calls_left_today);
        continue;
      }
      assert.deepEqual(sc.data, rest.body.data, `${tool.name}: MCP and REST data differ`);
      assert.equal(rest.body.summary, res.content[0].text);
      assert.deepEqual(sc.metadata.period, rest.body.metadata.period);
    }
  });

  test('a long call reports progress through notifications/progress', async () => {
    const seen = [];
    // a daily flow series over 115 days: two series reports (60-day chunks), dates no other
    // test asks for, so neither comes from the shared cache (a campaign trend is one report)
    const res = await client.callTool({
      name: 'klaviyo_get_performance_over_time',
      arguments: { account: 'kiwi', entity: 'flow', interval: 'daily',
        start_date: '2024-02-03', end_date: '2024-05-27' },
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

    // an unknown tool is a protocol error (spec: "Unknown tools" are JSON-RPC errors, -32602)
    await assert.rejects(client.callTool({ name: 'klaviyo_no_such_tool', arguments: {} }),
      (e) => e.code === -32602 && /Unknown tool: klaviyo_no_such_tool/.test(e.message));
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
