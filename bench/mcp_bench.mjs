#!/usr/bin/env node
// bench/mcp_bench.mjs — what the MCP shim costs. Not part of `make check`; it prints numbers
// and never fails on them.
//
//   node bench/mcp_bench.mjs [BUILD_DIR] [--runs N] [--calls N]
//
// BUILD_DIR holds the built klaviyo-mcp, klaviyo-restd and sim/klaviyo-sim (the
// current directory by default; KLAVIYO_MCP_BIN / KLAVIYO_RESTD / KLAVIYO_SIM override). Use
// a build without --enable-sanitizers for numbers that mean something. It needs no node
// modules: it drives the shim with raw JSON-RPC lines (tests/mcp/lib.mjs).
//
// It measures, against the simulator:
// 1. cold start: spawn klaviyo-mcp to its initialize response, with a shared klaviyo-restd
//    already listening, and the same with none (the shim starts its private one in the
//    background; initialize does not wait for it), plus spawn to the first tools/list answer
//    with no service running (the private service's start is in that number);
// 2. the added time per tools/call: the same call through the shim (stdio JSON-RPC, one
//    HTTP request over the Unix socket) and straight to POST /v1/tools/<name> on that socket,
//    interleaved, for a call that needs no Klaviyo request (klaviyo_list_accounts) and a cached
//    report (klaviyo_get_flows); medians of both and their difference.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
let build = process.cwd();
let runs = 30;
let calls = 300;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--runs') runs = Number(args[++i]);
  else if (args[i] === '--calls') calls = Number(args[++i]);
  else build = path.resolve(args[i]);
}
process.env.KLAVIYO_MCP_BIN ||= path.join(build, 'klaviyo-mcp');
process.env.KLAVIYO_RESTD ||= path.join(build, 'klaviyo-restd');
process.env.KLAVIYO_SIM ||= path.join(build, 'sim/klaviyo-sim');

const here = path.dirname(fileURLToPath(import.meta.url));
const lib = await import(path.join(here, '../tests/mcp/lib.mjs'));
const { Shim, initialize, restCall, rmtree, serviceEnv, startRestd, startSim, tmpdir } = lib;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

const ms = (ns) => Number(ns) / 1e6;
const fmt = (x) => `${x.toFixed(3)} ms`;

async function coldStart(sim, withService, until) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const dir = tmpdir('bench-cold');
    const env = serviceEnv(sim, dir, { LOG_LEVEL: 'warning' });
    const restd = withService ? await startRestd(env) : null;
    const t0 = process.hrtime.bigint();
    const sh = new Shim(env, { cwd: dir });
    await sh.request(initialize());
    if (until === 'list') await sh.request({ jsonrpc: '2.0', id: 'l', method: 'tools/list' });
    times.push(ms(process.hrtime.bigint() - t0));
    sh.close();
    await sh.wait();
    if (restd) await restd.stop();
    rmtree(dir);
  }
  return times;
}

async function perCall(sim) {
  const dir = tmpdir('bench-call');
  const env = serviceEnv(sim, dir, { LOG_LEVEL: 'warning', CACHE_TTL_SECONDS: '3600' });
  const restd = await startRestd(env, { workers: 1 });
  const sh = new Shim(env, { cwd: dir });
  await sh.request(initialize());
  const out = {};
  const cases = [
    ['klaviyo_list_accounts', {}],
    ['klaviyo_get_flows', { account: 'acme' }],
  ];
  let id = 0;
  for (const [name, a] of cases) {
    // warm: the tool list, the cache, the code paths
    for (let i = 0; i < 20; i++) {
      await sh.request({ jsonrpc: '2.0', id: ++id, method: 'tools/call',
        params: { name, arguments: a } });
      await restCall(env.KLAVIYO_MCP_SOCKET, name, a);
    }
    const viaMcp = [];
    const viaRest = [];
    for (let i = 0; i < calls; i++) {
      let t0 = process.hrtime.bigint();
      const r = await sh.request({ jsonrpc: '2.0', id: ++id, method: 'tools/call',
        params: { name, arguments: a } });
      viaMcp.push(ms(process.hrtime.bigint() - t0));
      if (r.result?.isError !== false) throw new Error(`${name} failed: ${JSON.stringify(r)}`);
      t0 = process.hrtime.bigint();
      const rest = await restCall(env.KLAVIYO_MCP_SOCKET, name, a);
      viaRest.push(ms(process.hrtime.bigint() - t0));
      if (rest.status !== 200) throw new Error(`REST ${name} answered ${rest.status}`);
    }
    out[name] = { viaMcp, viaRest };
  }
  sh.close();
  await sh.wait();
  await restd.stop();
  rmtree(dir);
  return out;
}

const simDir = tmpdir('bench-sim');
const sim = await startSim(simDir);
try {
  console.log(`klaviyo-mcp benchmark: ${runs} cold starts per case, ${calls} calls per tool`);
  console.log(`binaries: ${process.env.KLAVIYO_MCP_BIN}`);
  console.log('');
  console.log('cold start (median / p90):');
  for (const [label, withService, until] of [
    ['spawn -> initialize answered, shared klaviyo-restd running', true, 'init'],
    ['spawn -> initialize answered, no service running', false, 'init'],
    ['spawn -> tools/list answered, private klaviyo-restd started', false, 'list'],
  ]) {
    const t = await coldStart(sim, withService, until);
    console.log(`  ${label.padEnd(62)} ${fmt(median(t))} / ${fmt(pct(t, 90))}`);
  }
  console.log('');
  console.log('per tools/call, shared klaviyo-restd with 1 worker, answers cached (median):');
  const r = await perCall(sim);
  for (const [name, { viaMcp, viaRest }] of Object.entries(r)) {
    const m = median(viaMcp);
    const d = median(viaRest);
    console.log(`  ${name.padEnd(24)} via MCP ${fmt(m)}   REST direct ${fmt(d)}   `
      + `added by the shim ${fmt(m - d)}   `
      + `(p90 ${fmt(pct(viaMcp, 90))} vs ${fmt(pct(viaRest, 90))})`);
  }
} finally {
  await sim.stop();
  rmtree(simDir);
}
