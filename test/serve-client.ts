/**
 * A client of serve's HTTP API for the serve tests (test/serve*.test.ts): a GET, its JSON, and
 * an open server-sent event stream whose events can be waited for.
 */
import http from 'node:http';
import type { Test } from 'tap';
import { patient } from './wait.js';

/** GET `url`: status, headers and body text. */
export function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject).end();
  });
}

export async function getJson<T>(url: string): Promise<T> {
  const r = await get(url);
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

/** An open event stream: the events so far, and a way to wait for one. */
export function eventStream(t: Test, url: string) {
  const events: Array<{ event: string; data: unknown }> = [];
  const wake: Array<() => void> = [];
  let status = 0;
  const req = http.get(url, (res) => {
    status = res.statusCode ?? 0;
    let buf = '';
    res.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let cut = buf.indexOf('\n\n'); cut >= 0; cut = buf.indexOf('\n\n')) {
        const chunk = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(chunk)?.[1];
        const data = /^data: (.*)$/m.exec(chunk)?.[1];
        if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
      }
      for (const w of wake.splice(0)) w();
    });
    res.on('error', () => {});
  });
  req.on('error', () => {});
  t.teardown(() => req.destroy());
  return {
    events,
    status: () => status,
    close: () => req.destroy(),
    /** The first event (after `from`) named `name` for which `ok` holds; rejects after patient(`ms`). */
    async next<T>(name: string, ok: (data: T) => boolean = () => true, ms = 10_000, from = 0): Promise<T> {
      const deadline = Date.now() + patient(ms);
      for (;;) {
        const hit = events.slice(from).find((e) => e.event === name && ok(e.data as T));
        if (hit) return hit.data as T;
        if (Date.now() > deadline) throw new Error(`no '${name}' event within ${patient(ms)} ms; got: ${events.map((e) => e.event).join(', ')}`);
        await new Promise<void>((resolve) => {
          wake.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
  };
}
