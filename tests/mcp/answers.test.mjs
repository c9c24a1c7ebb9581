// answers.test.mjs — answers that fit a model's context (issue 11), through klaviyo-mcp with
// the official MCP SDK client on the simulator: the text of each heavy ordinary call stays
// within the budget, list tools page and sort (truncated / total_count at the edges, totals
// over all rows, ties in a stable order), series keep the top N and sum the rest into
// "other", MCP's data equals REST's for the same arguments, and a message past the cap is
// cut to fit instead of breaking the connection.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import Ajv from 'ajv';

import { heavyCalls, TEXT_BUDGET } from './heavy.mjs';
import {
  BIN, killAll, restCall, rmtree, serviceEnv, startRestd, startSim, tmpdir,
} from './lib.mjs';

const SLOW = { timeout: 600000 };
const YEAR = { start_date: '2025-07-01', end_date: '2026-06-30' };
const QUARTER = { start_date: '2026-07-01', end_date: '2026-09-30' };

async function connect(env, dir) {
  const transport = new StdioClientTransport({ command: BIN.mcp, args: [], env, cwd: dir,
    stderr: 'ignore' });
  const client = new Client({ name: 'klaviyo-mcp-answers-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

describe('answers that fit a model', () => {
  let dir;
  let sim;
  let env;
  let restd;
  let client;
  let tools;
  const ajv = new Ajv({ strict: false, allErrors: true });

  // an MCP call: not an error, and valid against the tool's outputSchema
  async function mcp(name, args) {
    const res = await client.callTool({ name, arguments: args }, undefined, SLOW);
    assert.equal(res.isError, false, `${name}: ${res.content?.[0]?.text}`);
    const validate = ajv.compile(tools.find((t) => t.name === name).outputSchema);
    assert.ok(validate(res.structuredContent), `${name}: ${ajv.errorsText(validate.errors)}`);
    return res;
  }

  // a plain REST call (no model view)
  async function rest(name, args) {
    const r = await restCall(env.KLAVIYO_MCP_SOCKET, name, args);
    assert.equal(r.status, 200, `${name}: ${r.text}`);
    assert.equal(r.body.summary, undefined, 'REST answers carry no summary');
    return r.body.data;
  }

  before(async () => {
    dir = tmpdir('answers');
    sim = await startSim(dir);
    env = serviceEnv(sim, dir);
    // a shared service, so REST and MCP answers come from the same process
    restd = await startRestd(env);
    client = await connect(env, dir);
    ({ tools } = await client.listTools());
  });

  after(async () => {
    await client?.close();
    await restd?.stop();
    await sim?.stop();
    killAll();
    if (dir) rmtree(dir);
  });

  test('the heaviest ordinary calls read in at most 40,000 characters', async () => {
    const flows = await mcp('klaviyo_get_flows', { account: 'acme', limit: 1 });
    const sizes = [];
    for (const c of heavyCalls(flows.structuredContent.data.flows[0].flow_id)) {
      const res = await mcp(c.name, c.arguments);
      const text = res.content[0].text;
      sizes.push(`${c.name} (${c.label}): ${text.length} chars`);
      assert.ok(text.length <= TEXT_BUDGET, `${c.label}: ${text.length} characters`);
      assert.match(text, /^## /);
      assert.doesNotMatch(text, /^\s*\{/, 'the text is not the JSON envelope');
      if (c.acceptance) {
        const data = res.structuredContent.data;
        assert.equal(typeof data.total_count, 'number', `${c.label}: paged for a model`);
        assert.equal(typeof data.truncated, 'boolean');
      }
    }
    console.log(sizes.join('\n'));
  });

  test('truncated and total_count at the edges: 0 rows, exactly limit, limit + 1', async () => {
    const all = await rest('klaviyo_get_list_health', { account: 'acme' });
    const n = all.lists.length;
    assert.ok(n > 2);
    for (const [limit, truncated, shown] of [[n, false, n], [n - 1, true, n - 1],
      [n + 1, false, n], [0, false, n]]) {
      const res = await mcp('klaviyo_get_list_health', { account: 'acme', limit });
      const d = res.structuredContent.data;
      assert.equal(d.truncated, truncated, `limit ${limit}`);
      assert.equal(d.total_count, n);
      assert.equal(d.lists.length, shown);
      assert.equal(d.list_count, n, 'the count covers every row');
      assert.equal(d.total_profiles, all.total_profiles, 'totals cover every row');
    }
    // a window without campaigns: no rows
    const none = await mcp('klaviyo_get_campaign_performance', { account: 'acme',
      start_date: '2022-03-01', end_date: '2022-03-31', limit: 5 });
    assert.deepEqual(none.structuredContent.data.campaigns, []);
    assert.equal(none.structuredContent.data.truncated, false);
    assert.equal(none.structuredContent.data.total_count, 0);
    // past the end
    const past = await rest('klaviyo_get_list_health', { account: 'acme', offset: n, limit: 5 });
    assert.deepEqual(past.lists, []);
    assert.equal(past.truncated, true);
  });

  test('totals are over all rows whatever the limit', async () => {
    const full = await rest('klaviyo_get_list_breakdown', { account: 'acme', ...YEAR });
    let text;
    for (const limit of [1, 5, 0]) {
      const res = await mcp('klaviyo_get_list_breakdown', { account: 'acme', ...YEAR, limit });
      assert.deepEqual(res.structuredContent.data.totals, full.totals, `limit ${limit}`);
      assert.equal(res.structuredContent.data.list_count, full.list_count);
      const line = res.content[0].text.split('\n').find((l) => l.startsWith('Totals over all'));
      if (text) assert.equal(line, text);
      text = line;
    }
    // campaigns: the text's totals are the sums over every campaign, not the page
    const camp = await rest('klaviyo_get_campaign_performance', { account: 'acme', ...YEAR });
    const sent = camp.campaigns.reduce((s, c) => s + c.sent, 0);
    const res = await mcp('klaviyo_get_campaign_performance', { account: 'acme', ...YEAR,
      limit: 2 });
    assert.equal(res.structuredContent.data.campaigns.length, 2);
    assert.match(res.content[0].text,
      new RegExp(`Totals over all ${camp.campaigns.length} campaigns: sent ${sent.toLocaleString('en-US')} `));
  });

  test('sort_by on every allowed field, ties in the tool\'s order', async () => {
    for (const name of ['klaviyo_get_list_breakdown', 'klaviyo_get_campaign_performance']) {
      const tool = tools.find((t) => t.name === name);
      const base = await rest(name, { account: 'acme', ...YEAR });
      const rowsKey = name === 'klaviyo_get_list_breakdown' ? 'lists' : 'campaigns';
      const order = new Map(base[rowsKey].map((r, i) => [JSON.stringify(r), i]));
      for (const field of tool.inputSchema.properties.sort_by.enum) {
        const d = await rest(name, { account: 'acme', ...YEAR, sort_by: field, limit: 0 });
        const rows = d[rowsKey];
        assert.equal(rows.length, base[rowsKey].length);
        const numeric = rows.some((r) => typeof r[field] === 'number');
        for (let i = 1; i < rows.length; i++) {
          const a = rows[i - 1][field];
          const b = rows[i][field];
          if (a === null || b === null) {
            assert.ok(b === null, `${name} ${field}: nulls last`);
          } else {
            // numbers highest first, names A to Z (case-insensitive, byte order)
            const ok = numeric ? a >= b : a.toLowerCase() <= b.toLowerCase();
            assert.ok(ok, `${name} ${field}: row ${i} out of order (${a}, ${b})`);
          }
          if (a === b) {
            assert.ok(order.get(JSON.stringify(rows[i - 1])) < order.get(JSON.stringify(rows[i])),
              `${name} ${field}: a tie left the tool's order at row ${i}`);
          }
        }
        const asc = await rest(name, { account: 'acme', ...YEAR, sort_by: field,
          sort_order: numeric ? 'asc' : 'desc', limit: 3 });
        assert.equal(asc[rowsKey].length, Math.min(3, rows.length));
      }
    }
  });

  test('"other" is the sum of the series that were cut', async () => {
    const args = { account: 'acme', entity: 'flow', interval: 'weekly', ...QUARTER };
    const full = await rest('klaviyo_get_performance_over_time', { ...args, limit: 0 });
    const res = await mcp('klaviyo_get_performance_over_time', { ...args, limit: 3 });
    const top = res.structuredContent.data;
    assert.equal(top.total_count, full.series.length);
    assert.ok(full.series.length > 4);
    assert.equal(top.truncated, true);
    assert.equal(top.series.length, 4);
    const other = top.series[3];
    assert.deepEqual(other.groupings, { other: true, series_count: full.series.length - 3 });
    const kept = new Set(top.series.slice(0, 3).map((s) => JSON.stringify(s.groupings)));
    const cut = full.series.filter((s) => !kept.has(JSON.stringify(s.groupings)));
    assert.equal(cut.length, full.series.length - 3);
    for (const [stat, values] of Object.entries(other.statistics)) {
      values.forEach((v, b) => {
        const col = cut.map((s) => s.statistics[stat][b]);
        if (/_rate$|average_order_value|revenue_per_recipient/.test(stat)) {
          assert.equal(v, null, `${stat}: a sum of ratios is null`);
        } else if (col.every((x) => x === null)) {
          assert.equal(v, null);
        } else {
          const sum = col.reduce((s, x) => s + (x ?? 0), 0);
          assert.ok(Math.abs(v - sum) < 1e-3, `${stat}[${b}]: ${v} != ${sum}`);
        }
      });
    }
    // the top three are the largest by conversion_value
    const total = (s) => s.statistics.conversion_value.reduce((x, y) => x + (y ?? 0), 0);
    const ranked = full.series.map(total).sort((x, y) => y - x);
    assert.deepEqual(top.series.slice(0, 3).map(total), ranked.slice(0, 3));
  });

  test('REST and MCP data are equal for the same arguments', async () => {
    const cases = [
      ['klaviyo_get_campaign_performance', { account: 'acme', ...YEAR, limit: 5, offset: 2,
        sort_by: 'open_rate' }],
      ['klaviyo_get_flow_performance', { account: 'acme', ...YEAR, limit: 4,
        sort_by: 'sent', sort_order: 'asc' }],
      ['klaviyo_get_flows', { account: 'acme', limit: 7, offset: 3, sort_by: 'name' }],
      ['klaviyo_get_list_health', { account: 'acme', limit: 0, sort_by: 'profile_count' }],
      ['klaviyo_get_list_growth_by_list', { account: 'acme', ...YEAR, limit: 3,
        sort_by: 'net' }],
      ['klaviyo_get_list_breakdown', { account: 'acme', ...YEAR, limit: 6, sort_by: 'name' }],
      ['klaviyo_get_performance_over_time', { account: 'acme', entity: 'campaign',
        interval: 'monthly', ...YEAR, limit: 4, sort_by: 'delivered' }],
      // a model's defaults are only defaults: spelled out, REST gives the same
      ['klaviyo_get_campaign_performance', { account: 'acme', ...YEAR, limit: 25,
        sort_by: 'conversion_value' }],
    ];
    for (const [name, args] of cases) {
      const res = await mcp(name, args);
      assert.deepEqual(res.structuredContent.data, await rest(name, args), name);
    }
    const dflt = await mcp('klaviyo_get_campaign_performance', { account: 'acme', ...YEAR });
    assert.deepEqual(dflt.structuredContent.data, await rest('klaviyo_get_campaign_performance',
      { account: 'acme', ...YEAR, limit: 25, sort_by: 'conversion_value' }));
    // and REST without paging arguments keeps the seed's full answer
    const plain = await rest('klaviyo_get_campaign_performance', { account: 'acme', ...YEAR });
    assert.equal(plain.truncated, undefined);
    assert.equal(plain.campaigns.length, plain.campaign_count);
  });

  test('a message cap out of range is a configuration error', () => {
    for (const bad of ['12', '9000000', '64k']) {
      const r = spawnSync(BIN.mcp, ['--check-config'], { cwd: dir, encoding: 'utf8',
        env: serviceEnv(sim, dir, { KLAVIYO_MCP_MAX_MESSAGE_BYTES: bad }) });
      assert.equal(r.status, 78, r.stderr);
      assert.match(r.stderr, /CONFIG_ERROR: KLAVIYO_MCP_MAX_MESSAGE_BYTES must be a byte count/);
    }
    const ok = spawnSync(BIN.mcp, ['--check-config'], { cwd: dir, encoding: 'utf8',
      env: serviceEnv(sim, dir, { KLAVIYO_MCP_MAX_MESSAGE_BYTES: '65536' }) });
    assert.equal(ok.status, 0, ok.stderr);
  });

  test('a result past the message cap is cut to fit, not broken', async () => {
    const cap = 65536;
    const small = await connect(serviceEnv(sim, dir, {
      KLAVIYO_MCP_MAX_MESSAGE_BYTES: String(cap) }), dir);
    try {
      await small.listTools();      // so the SDK validates structuredContent
      const res = await small.callTool({ name: 'klaviyo_get_campaign_performance',
        arguments: { account: 'acme', start_date: '2023-07-01', end_date: '2026-06-30',
          limit: 0 } }, undefined, SLOW);
      assert.equal(res.isError, false, res.content?.[0]?.text);
      const d = res.structuredContent.data;
      assert.ok(JSON.stringify(res).length <= cap, `${JSON.stringify(res).length} bytes`);
      assert.equal(d.truncated, true);
      assert.ok(d.campaigns.length > 0 && d.campaigns.length < d.total_count);
      assert.match(res.content[0].text, /Cut to fit the 65536-byte message cap: data\.campaigns/);
      assert.ok(res.structuredContent.warnings.some((w) => w.startsWith('Cut to fit')));
    } finally {
      await small.close();
    }
  });
});
