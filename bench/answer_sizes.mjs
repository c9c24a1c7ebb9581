#!/usr/bin/env node
// bench/answer_sizes.mjs — how big the answers a model reads are. Not part of `make check`; it
// prints numbers and never fails on them (tests/mcp/answers.test.mjs holds the budget).
//
//   node bench/answer_sizes.mjs [BUILD_DIR] [--show]
//
// For the heaviest ordinary call of each tool on the simulator's largest account
// (tests/mcp/heavy.mjs) it prints the characters of the text block (what the model reads),
// the bytes of structuredContent and of the whole JSON-RPC line klaviyo-mcp wrote, with the
// model's defaults, and the same call with limit 0 (every row) for comparison. --show also
// prints each text. BUILD_DIR holds the built klaviyo-mcp, klaviyo-restd and
// sim/klaviyo-sim (the current directory by default). It needs no node
// modules: it drives the shim with raw JSON-RPC lines (tests/mcp/lib.mjs).

import path from 'node:path';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
let build = process.cwd();
let show = false;
for (const a of argv) {
  if (a === '--show') show = true;
  else build = path.resolve(a);
}
process.env.KLAVIYO_MCP_BIN ||= path.join(build, 'klaviyo-mcp');
process.env.KLAVIYO_RESTD ||= path.join(build, 'klaviyo-restd');
process.env.KLAVIYO_SIM ||= path.join(build, 'sim/klaviyo-sim');

const here = path.dirname(fileURLToPath(import.meta.url));
const lib = await import(path.join(here, '../tests/mcp/lib.mjs'));
const { heavyCalls, TEXT_BUDGET } = await import(path.join(here, '../tests/mcp/heavy.mjs'));
const { Shim, initialize, rmtree, serviceEnv, startSim, tmpdir, killAll } = lib;

const dir = tmpdir('sizes');
const sim = await startSim(dir);
const sh = new Shim(serviceEnv(sim, dir), { cwd: dir });
let id = 0;

async function call(name, args) {
  const msg = { jsonrpc: '2.0', id: ++id, method: 'tools/call',
    params: { name, arguments: args } };
  const r = await sh.request(msg, 600000);
  const line = JSON.stringify(r);
  const res = r.result;
  return {
    error: res.isError,
    text: res.content[0].text,
    sc: res.structuredContent ? Buffer.byteLength(JSON.stringify(res.structuredContent)) : 0,
    line: Buffer.byteLength(line),
  };
}

try {
  await sh.request(initialize());
  const first = (await sh.request({ jsonrpc: '2.0', id: ++id, method: 'tools/call',
    params: { name: 'klaviyo_get_flows', arguments: { account: 'acme', limit: 1 } } }))
    .result.structuredContent.data.flows[0].flow_id;
  const rows = [];
  for (const c of heavyCalls(first)) {
    const d = await call(c.name, c.arguments);
    // the same call with every row, for tools that page
    const pages = !/accounts|structure|compare|list_growth$/.test(c.name);
    const all = await call(c.name, { ...c.arguments, ...(pages ? { limit: 0 } : {}) });
    rows.push([c.name.replace(/^klaviyo_/, ''), c.label, d.error ? 'ERROR' : '',
      d.text.length, d.sc, d.line, all.text.length, all.sc]);
    if (show) console.log(`\n===== ${c.name} (${c.label}) =====\n${d.text}`);
  }
  const head = ['tool', 'call', '', 'text chars', 'structured bytes', 'line bytes',
    'text chars (limit 0)', 'structured bytes (limit 0)'];
  console.log(`\ntext budget: ${TEXT_BUDGET} characters`);
  console.log(head.join('\t'));
  for (const r of rows) console.log(r.join('\t'));
} finally {
  sh.close();
  await sh.wait().catch(() => {});
  await sim.stop();
  killAll();
  rmtree(dir);
}
