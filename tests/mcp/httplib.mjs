// httplib.mjs — helpers of the MCP-over-HTTP tests: klaviyo-restd with a TCP listener on a
// free loopback port and REST tokens, raw HTTP requests to /mcp (SSE read as events), and a
// token-adding proxy for clients that send none (the conformance suite).

import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';

import { BIN, waitFor } from './lib.mjs';

export const TOKEN = 'mcp-http-test-token-0123456789';
export const TOKEN2 = 'mcp-http-second-token-987654';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// One raw request; resolves with status, headers, text and parsed JSON (or null).
export function request(port, { method = 'POST', path = '/mcp', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers,
      agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch { /* SSE or empty */ }
        resolve({ status: res.statusCode, headers: res.headers, text, body: json,
          events: parseSse(text) });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}

// The data of each SSE event in text, parsed.
export function parseSse(text) {
  const out = [];
  for (const block of text.split('\n\n')) {
    const data = block.split('\n').filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart()).join('\n');
    if (data) {
      try {
        out.push(JSON.parse(data));
      } catch { /* not JSON */ }
    }
  }
  return out;
}

// Headers of a well-formed POST (token, Accept, Content-Type), plus extra.
export function mcpHeaders(extra = {}, token = TOKEN) {
  return {
    Authorization: `Bearer ${token}`,
    Accept: 'application/json, text/event-stream',
    'Content-Type': 'application/json',
    ...extra,
  };
}

// klaviyo-restd with its TCP listener on a free loopback port (and its Unix socket).
export async function startHttpRestd(env, { workers = 1, extra = {} } = {}) {
  const port = await freePort();
  let err = '';
  const proc = spawn(BIN.restd, [], {
    env: { ...env, WORKERS: String(workers), REST_HOST: '127.0.0.1', REST_PORT: String(port),
      REST_API_TOKENS: `${TOKEN},${TOKEN2}`, ...extra },
    stdio: ['ignore', 'ignore', 'pipe'], detached: true,
  });
  proc.stderr.on('data', (c) => { err += c.toString('utf8'); });
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  await waitFor(async () => {
    try {
      return (await request(port, { method: 'GET', path: '/health' })).status === 200;
    } catch {
      return false;
    }
  }, { what: 'klaviyo-restd to answer on TCP' });
  return {
    proc, pid: proc.pid, port, url: `http://127.0.0.1:${port}/mcp`, exited,
    stderr: () => err,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        try {
          process.kill(-proc.pid, 'SIGTERM');
        } catch { /* gone */ }
      }
      return exited;
    },
  };
}

// A loopback proxy to `port` that adds the token and changes nothing else (Host and Origin
// pass as sent, so the service still sees what the client sent).
export async function tokenProxy(port, token = TOKEN) {
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers, authorization: `Bearer ${token}` };
    const up = http.request({ host: '127.0.0.1', port, path: req.url, method: req.method,
      headers, agent: false }, (ures) => {
      res.writeHead(ures.statusCode, ures.headers);
      ures.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}
