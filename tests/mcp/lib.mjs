// lib.mjs — helpers shared by the MCP end-to-end tests and the benchmark: start the Klaviyo
// simulator and klaviyo-restd on private sockets and temporary directories, drive klaviyo-mcp
// with raw JSON-RPC lines, call the REST routes over the Unix socket, and check processes in
// /proc. Every process started here is killed when the node process exits.
//
// Paths come from the environment that `make check` sets (AM_TESTS_ENVIRONMENT):
// KLAVIYO_MCP_BIN, KLAVIYO_RESTD, KLAVIYO_SIM.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const BIN = {
  mcp: process.env.KLAVIYO_MCP_BIN,
  restd: process.env.KLAVIYO_RESTD,
  sim: process.env.KLAVIYO_SIM,
};

export const STATELESS = '2026-07-28';
export const META_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const META_CAPS = 'io.modelcontextprotocol/clientCapabilities';
export const META_SERVER = 'io.modelcontextprotocol/serverInfo';

// _meta for a 2026-07-28 request.
export function meta(extra = {}) {
  return {
    [META_VERSION]: STATELESS,
    [META_CAPS]: {},
    'io.modelcontextprotocol/clientInfo': { name: 'raw-test', version: '1' },
    ...extra,
  };
}

const live = new Set();

// Kill every process started here that still runs (a failed test leaves some behind; their
// pipes would keep node alive). Call it from `after` hooks; it also runs at exit.
export function killAll() {
  for (const p of live) {
    try {
      if (p.detachedGroup) process.kill(-p.pid, 'SIGKILL');
      else p.kill('SIGKILL');
    } catch { /* already gone */ }
  }
  live.clear();
}
process.on('exit', killAll);

export function tmpdir(tag) {
  // short: a socket path under it must fit in sun_path (108 bytes)
  return fs.mkdtempSync(path.join(os.tmpdir().length < 40 ? os.tmpdir() : '/tmp', `km-${tag}-`));
}

export function rmtree(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
}

export async function waitFor(fn, { timeout = 30000, interval = 20, what = 'a condition' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(interval);
  }
}

// --- processes in /proc --------------------------------------------------------------------

// 1 while pid exists and is not a zombie.
export function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export function children(pid) {
  const out = [];
  let tasks = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const text = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch { /* the thread ended */ }
  }
  return out;
}

export function descendants(pid) {
  const all = [];
  for (const c of children(pid)) all.push(c, ...descendants(c));
  return all;
}

export function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

export async function waitGone(pid, timeout = 30000) {
  await waitFor(() => !alive(pid), { timeout, what: `process ${pid} to exit` });
}

// --- the simulator ------------------------------------------------------------------------

export function dotenv(file) {
  const env = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (m && !line.trimStart().startsWith('#')) env[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return env;
}

// The simulator; with { limits: true } it enforces Klaviyo's real, unscaled rate limits
// (429 past them), else it never throttles.
export async function startSim(dir, { limits = false } = {}) {
  const cfg = path.join(dir, 'sim-config');
  const portFile = path.join(dir, 'sim.port');
  fs.mkdirSync(cfg, { recursive: true });
  const proc = spawn(BIN.sim, ['--port', '0', '--port-file', portFile, '--write-config', cfg,
    ...(limits ? [] : ['--no-limits']), '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] });
  live.add(proc);
  const port = await waitFor(() => {
    try {
      return Number(fs.readFileSync(portFile, 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  }, { what: 'the simulator to listen' });
  await waitFor(() => fs.existsSync(path.join(cfg, '.env')), { what: 'the simulator config' });
  const url = `http://127.0.0.1:${port}`;
  return {
    proc, port, url, cfg,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.once('exit', r)));
      live.delete(proc);
    },
  };
}

function httpJson(opts, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(opts, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, body: json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export async function simFault(sim, fault) {
  const u = new URL('/__sim/faults', sim.url);
  const body = JSON.stringify(fault);
  const r = await httpJson({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
  body);
  if (r.status >= 300) throw new Error(`sim fault refused: ${r.status} ${r.text}`);
}

export async function simStats(sim) {
  const u = new URL('/__sim/stats', sim.url);
  return (await httpJson({ host: u.hostname, port: u.port, path: u.pathname })).body;
}

// --- configuration and the service ---------------------------------------------------------

// The environment for klaviyo-mcp / klaviyo-restd serving the simulator's demo accounts from
// a private directory. Nothing from the user's own configuration leaks in.
export function serviceEnv(sim, dir, extra = {}) {
  const run = path.join(dir, 'run');
  fs.mkdirSync(run, { recursive: true, mode: 0o700 });
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    XDG_CONFIG_HOME: path.join(dir, 'xdg-config'),
    XDG_CACHE_HOME: path.join(dir, 'xdg-cache'),
    XDG_RUNTIME_DIR: run,
    ACCOUNTS_FILE: path.join(sim.cfg, 'accounts.toml'),
    ...dotenv(path.join(sim.cfg, '.env')),
    KLAVIYO_BASE_URL: sim.url,
    KLAVIYO_MCP_SOCKET: path.join(run, 'restd.sock'),
    STORE_DIR: path.join(dir, 'store'),
    RATE_LIMIT_SCALE: '0.001',
    KLAVIYO_RESTD: BIN.restd,
    LOG_LEVEL: 'info',
  };
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'TMPDIR']) {
    if (process.env[k]) env[k] = process.env[k];
  }
  return { ...env, ...extra };
}

// The environment of serviceEnv at Klaviyo's real limits: no RATE_LIMIT_SCALE.
export function realEnv(sim, dir, extra = {}) {
  const env = serviceEnv(sim, dir, extra);
  delete env.RATE_LIMIT_SCALE;
  return env;
}

export function restCall(sock, name, args, headers = {}) {
  const body = JSON.stringify(args ?? {});
  return httpJson({ socketPath: sock, path: `/v1/tools/${name}`, method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body),
      ...headers } }, body);
}

export function restGet(sock, p) {
  return httpJson({ socketPath: sock, path: p, method: 'GET' });
}

export async function healthy(sock) {
  try {
    return (await restGet(sock, '/health')).status === 200;
  } catch {
    return false;
  }
}

// A shared klaviyo-restd (socket only, `workers` workers) in its own process group.
export async function startRestd(env, { workers = 1 } = {}) {
  let err = '';
  const proc = spawn(BIN.restd, ['--socket-only'], {
    env: { ...env, WORKERS: String(workers), REST_PORT: '0' },
    stdio: ['ignore', 'ignore', 'pipe'], detached: true,
  });
  proc.detachedGroup = true;
  live.add(proc);
  proc.stderr.on('data', (c) => { err += c.toString('utf8'); });
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  await waitFor(() => healthy(env.KLAVIYO_MCP_SOCKET), { what: 'klaviyo-restd to answer' });
  return {
    proc, pid: proc.pid, exited,
    stderr: () => err,
    async kill9() {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch { /* gone */ }
      await exited;
      live.delete(proc);
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const r = await exited;
      live.delete(proc);
      return r;
    },
  };
}

// A simulator enforcing Klaviyo's real limits and a klaviyo-restd at those limits (realEnv with
// `extra`, `workers` workers) in a new temporary directory. stop() ends both and removes it.
export async function startRealService(tag, extra = {}, { workers = 1 } = {}) {
  const dir = tmpdir(tag);
  const svc = { dir, sim: null, env: null, restd: null };
  svc.stop = async () => {
    await svc.restd?.stop();
    await svc.sim?.stop();
    killAll();
    rmtree(dir);
  };
  try {
    svc.sim = await startSim(dir, { limits: true });
    svc.env = realEnv(svc.sim, dir, extra);
    svc.restd = await startRestd(svc.env, { workers });
  } catch (e) {
    await svc.stop();
    throw e;
  }
  return svc;
}

// --- klaviyo-mcp driven by raw lines -------------------------------------------------------

export class Shim {
  constructor(env, { cwd, args = [] } = {}) {
    this.proc = spawn(BIN.mcp, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(this.proc);
    this.queue = [];
    this.waiters = [];
    this.stray = [];            // stdout lines that were not JSON-RPC messages
    this.err = '';
    this.out = '';
    this.lines = 0;
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        live.delete(this.proc);
        resolve({ code, signal });
        this._wake();
      });
    });
    this.proc.stdin.on('error', () => { /* the shim may be gone already */ });
    this.proc.stdout.on('data', (chunk) => {
      this.out += chunk.toString('utf8');
      let nl;
      while ((nl = this.out.indexOf('\n')) >= 0) {
        const line = this.out.slice(0, nl);
        this.out = this.out.slice(nl + 1);
        this.lines++;
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          this.stray.push(line);
          continue;
        }
        const ok = (m) => m && typeof m === 'object' && m.jsonrpc === '2.0';
        if (!(Array.isArray(msg) ? msg.every(ok) : ok(msg))) this.stray.push(line);
        this.queue.push(msg);
        this._wake();
      }
    });
    this.proc.stderr.on('data', (c) => { this.err += c.toString('utf8'); });
  }

  get pid() { return this.proc.pid; }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(msg) {
    this.proc.stdin.write((typeof msg === 'string' ? msg : JSON.stringify(msg)) + '\n');
  }

  write(bytes) {
    this.proc.stdin.write(bytes);
  }

  // The first message (in order) that matches `pred`, removed from the queue.
  async next(pred = () => true, timeout = 60000) {
    const end = Date.now() + timeout;
    for (;;) {
      const i = this.queue.findIndex(pred);
      if (i >= 0) return this.queue.splice(i, 1)[0];
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`klaviyo-mcp exited while a message was awaited\n${this.err}`);
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a message\n${this.err.slice(-4000)}`);
      await Promise.race([new Promise((r) => this.waiters.push(r)),
        sleep(Math.min(left, 500), undefined, { ref: false })]);
    }
  }

  // Send a request and wait for its response.
  async request(msg, timeout) {
    this.send(msg);
    return this.next((m) => m && !Array.isArray(m) && m.id === msg.id && !m.method, timeout);
  }

  // Everything queued and not taken yet, and empty the queue.
  drain() {
    return this.queue.splice(0, this.queue.length);
  }

  close() {
    this.proc.stdin.end();
  }

  async wait(timeout = 60000) {
    // an unref'd timer: a pending timeout must not keep node alive once the shim has exited
    const t = sleep(timeout, undefined, { ref: false })
      .then(() => { throw new Error('klaviyo-mcp did not exit'); });
    return Promise.race([this.exited, t]);
  }

  kill(sig = 'SIGTERM') {
    this.proc.kill(sig);
  }

  // The private klaviyo-restd this shim started, if any.
  restdChild() {
    return children(this.pid).find((c) => (cmdline(c)[0] || '').endsWith('klaviyo-restd'));
  }
}

export function initialize(version = '2025-06-18', id = 'init') {
  return {
    jsonrpc: '2.0', id, method: 'initialize',
    params: {
      protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' },
    },
  };
}

// Arguments that make each tool do real work against the simulator's acme account.
export function toolArgs(flowId) {
  const window = { start_date: '2025-03-01', end_date: '2025-03-28' };
  return {
    klaviyo_list_accounts: {},
    klaviyo_get_campaign_performance: { account: 'acme', ...window },
    klaviyo_get_flows: { account: 'acme' },
    klaviyo_get_flow_performance: { account: 'acme', ...window },
    klaviyo_get_flow_structure: { account: 'acme', flow_id: flowId },
    klaviyo_get_performance_over_time: { account: 'acme', entity: 'campaign', interval: 'weekly',
      ...window },
    klaviyo_compare_periods: { account: 'acme', entity: 'campaign', ...window },
    klaviyo_get_list_health: { account: 'acme' },
    klaviyo_get_list_growth: { account: 'acme', ...window },
    klaviyo_get_list_growth_by_list: { account: 'acme', ...window },
    klaviyo_get_list_breakdown: { account: 'acme', ...window },
    klaviyo_get_budget: { account: 'acme' },
  };
}
