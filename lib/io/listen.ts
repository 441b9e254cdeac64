/**
 * What every rowlog TCP server shares (docs/DESIGN.md §9): the socket sink's subscriber server and the
 * collector. They bind 127.0.0.1 unless told otherwise; any other address needs a token (the
 * client's first line) or an explicit `allowInsecure`, else `ERR_INSECURE_BIND`. The token is
 * compared in constant time; a wrong or missing one gets one `{"$error":…}` line and the door.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { RowlogError } from '../core/errors.js';
import { numberOption, optionError } from '../core/options.js';

/** The address a server binds when none is given. */
export const DEFAULT_HOST = '127.0.0.1';

/** How long a client has to send its token line. */
const TOKEN_TIMEOUT_MS = 5000;
/** The longest token line read before giving up on a client. */
const MAX_TOKEN_LINE = 4096;

/** Where and how a rowlog server listens. */
export interface ListenOptions {
  /** TCP port; 0 picks a free one. */
  port?: number;
  /** Address to bind. Anything but a loopback address needs `token` or `allowInsecure`. @default '127.0.0.1' */
  host?: string;
  /** Secret every client must send as its first line. @default none (loopback only) */
  token?: string;
  /** Bind a non-loopback address without a token. @default false */
  allowInsecure?: boolean;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host) || /^::ffff:127(\.\d{1,3}){3}$/.test(host);
}

/** Validates `opts` (types, port range, the token rule) and returns them filled in. */
export function checkListen(opts: ListenOptions, what: string): Required<Omit<ListenOptions, 'token'>> & { token: string | undefined } {
  const host = opts.host ?? DEFAULT_HOST;
  if (typeof host !== 'string' || host === '') throw optionError('type', 'host', `must be a non-empty string (got ${String(host)})`);
  const port = numberOption(opts.port ?? 0, 'port', { min: 0, max: 65535, integer: true });
  const token = checkToken(opts.token);
  const allowInsecure = opts.allowInsecure === true;
  if (!isLoopback(host) && token === undefined && !allowInsecure) {
    throw new RowlogError(
      'ERR_INSECURE_BIND',
      `${what}: binding ${host} would let anyone on the network connect; pass a token (clients send it first) or allowInsecure: true`,
    );
  }
  return { host, port, token, allowInsecure };
}

/** A token option: `undefined`, or a non-empty string without line breaks (it is sent as one line). */
export function checkToken(token: unknown): string | undefined {
  if (token !== undefined && (typeof token !== 'string' || token === '' || /[\r\n]/.test(token))) {
    throw optionError('type', 'token', 'must be a non-empty string without line breaks');
  }
  return token;
}

/** Clients of rowlog servers retry a refused or lost connection after 100 ms, doubling up to 2 s. */
export const RETRY_MIN_MS = 100;
export const RETRY_MAX_MS = 2000;

/** Starts `server` on `host:port`; resolves with the bound port. */
export function listen(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function digest(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}

/** One `{"$error":…}` line, the way rowlog servers refuse a client. */
export function errorLine(code: string, message: string): string {
  return `${JSON.stringify({ $error: code, message })}\n`;
}

/**
 * Waits for `socket`'s token line when `token` is set. Resolves with the bytes the client sent
 * after it (or an empty buffer when no token is needed), or `undefined` when the client was
 * refused (wrong token, no line within 5 s, or it went away), in which case the socket is ended.
 */
export function acceptClient(socket: net.Socket, token: string | undefined): Promise<Buffer | undefined> {
  if (token === undefined) return Promise.resolve(Buffer.alloc(0));
  const want = digest(token);
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (rest: Buffer | undefined, refusal?: string) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (refusal !== undefined) {
        socket.end(errorLine('ERR_BAD_TOKEN', refusal));
        socket.destroySoon?.();
      }
      resolve(rest);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(10);
      if (nl < 0) {
        if (buf.length > MAX_TOKEN_LINE) done(undefined, 'the first line must be the token');
        return;
      }
      const line = buf.subarray(0, nl > 0 && buf[nl - 1] === 13 ? nl - 1 : nl);
      if (timingSafeEqual(digest(line), want)) done(buf.subarray(nl + 1));
      else done(undefined, 'wrong token');
    };
    const onClose = () => done(undefined);
    const timer = setTimeout(() => done(undefined, `no token line within ${TOKEN_TIMEOUT_MS} ms`), TOKEN_TIMEOUT_MS);
    timer.unref();
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

/** `host:port`, `:port` or `port` → its parts (host defaults to 127.0.0.1). */
export function parseHostPort(address: string, option: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address) ?? /^()()(\d+)$/.exec(address);
  if (m === null) throw optionError('range', option, `must be host:port (got ${JSON.stringify(address)})`);
  const host = m[1] || m[2] || DEFAULT_HOST;
  const port = numberOption(Number(m[3]), option, { min: 1, max: 65535, integer: true });
  return { host, port };
}
