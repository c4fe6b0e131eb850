// The open loop's HTTP/1.1 client: keep-alive connections with one request at a time on each, every request's bytes
// encoded once before the run, and one socket write per request. The load generator shares the machine with the
// server under test, and its cost per request bounds the rates a run can measure (BENCHMARKS.md, "The bench's own
// client"). Requests wait in order when every connection is busy; a request is never retried.
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { type Http1Response, Http1ResponseReader } from './http1-response.js';

export type Http1Failure = 'timeout' | 'connection';

export interface Http1Handler {
  onResponse(response: Http1Response): void;
  onError(kind: Http1Failure, err: Error): void;
}

/** A request's bytes: the request line, Host, Content-Length and `headers`, then the body. */
export function encodeRequest(
  origin: string,
  method: string,
  path: string,
  headers: Readonly<Record<string, string>>,
  body?: Buffer,
): Buffer {
  let head = `${method} ${path} HTTP/1.1\r\nhost: ${new URL(origin).host}\r\n`;
  if (body !== undefined) head += `content-length: ${body.byteLength}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  const headBytes = Buffer.from(`${head}\r\n`, 'latin1');
  return body === undefined ? headBytes : Buffer.concat([headBytes, body]);
}

interface Connection {
  readonly socket: Socket;
  readonly reader: Http1ResponseReader;
  handler: Http1Handler | undefined;
  sentAtMs: number;
  error: Error | undefined;
}

export class Http1Pool {
  readonly #url: URL;
  readonly #max: number;
  readonly #timeoutMs: number;
  readonly #ca: string | Buffer | undefined;
  readonly #all = new Set<Connection>();
  readonly #idle: Connection[] = [];
  readonly #waiting: { request: Buffer; handler: Http1Handler }[] = [];
  readonly #sweep: NodeJS.Timeout;
  #destroyed = false;

  /** `ca`: the certificates https trusts instead of the well-known ones (a self-signed endpoint's). */
  constructor(origin: string, options: { connections: number; timeoutMs: number; ca?: string | Buffer }) {
    this.#url = new URL(origin);
    if (this.#url.protocol !== 'http:' && this.#url.protocol !== 'https:')
      throw new Error(`the bench speaks http and https, not ${this.#url.protocol}`);
    this.#max = options.connections;
    this.#timeoutMs = options.timeoutMs;
    this.#ca = options.ca;
    this.#sweep = setInterval(() => this.#expire(), Math.min(250, Math.max(10, options.timeoutMs / 4)));
    this.#sweep.unref();
  }

  /** Sends `request` (from encodeRequest) on a free connection, or once one frees up. */
  dispatch(request: Buffer, handler: Http1Handler): void {
    if (this.#destroyed) {
      handler.onError('connection', new Error('the pool is closed'));
      return;
    }
    const c = this.#idle.pop() ?? (this.#all.size < this.#max ? this.#connect() : undefined);
    if (c === undefined) this.#waiting.push({ request, handler });
    else this.#send(c, request, handler);
  }

  /** Opens connections until `n` are open (or the limit), and waits until they are connected. */
  async open(n: number): Promise<void> {
    const fresh: Connection[] = [];
    while (this.#all.size < Math.min(n, this.#max)) {
      const c = this.#connect();
      this.#idle.push(c);
      fresh.push(c);
    }
    await Promise.all(
      fresh.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (!c.socket.connecting) resolve();
            c.socket.once(this.#url.protocol === 'https:' ? 'secureConnect' : 'connect', () => resolve());
            c.socket.once('close', () => resolve());
          }),
      ),
    );
  }

  /** Closes every connection; requests still in flight or waiting get no answer. */
  async destroy(): Promise<void> {
    this.#destroyed = true;
    clearInterval(this.#sweep);
    this.#waiting.length = 0;
    for (const c of this.#all) {
      c.handler = undefined;
      c.socket.destroy();
    }
  }

  #connect(): Connection {
    const port = Number(this.#url.port || (this.#url.protocol === 'https:' ? 443 : 80));
    const host = this.#url.hostname.replace(/^\[|\]$/g, '');
    const socket =
      this.#url.protocol === 'https:'
        ? tlsConnect({ host, port, servername: isIP(host) === 0 ? host : undefined, ca: this.#ca })
        : netConnect({ host, port });
    socket.setNoDelay(true);
    const c: Connection = {
      socket,
      reader: new Http1ResponseReader(),
      handler: undefined,
      sentAtMs: 0,
      error: undefined,
    };
    this.#all.add(c);
    socket.on('data', (chunk: Buffer) => this.#read(c, chunk));
    socket.on('error', (err) => {
      c.error = err;
    });
    socket.on('close', () => this.#closed(c));
    return c;
  }

  #send(c: Connection, request: Buffer, handler: Http1Handler): void {
    c.handler = handler;
    c.sentAtMs = performance.now();
    c.socket.write(request);
  }

  #read(c: Connection, chunk: Buffer): void {
    if (c.handler === undefined) {
      // Bytes nobody asked for: the connection can no longer be trusted to frame the next answer.
      c.socket.destroy();
      return;
    }
    let responses: Http1Response[];
    try {
      responses = c.reader.push(chunk);
    } catch (err) {
      this.#fail(c, 'connection', err as Error);
      return;
    }
    for (const r of responses) {
      const h = c.handler;
      if (h === undefined) {
        this.#fail(c, 'connection', new Error('a response nobody asked for'));
        return;
      }
      c.handler = undefined;
      h.onResponse(r);
      if (!r.keepAlive) {
        c.socket.destroy();
        return;
      }
    }
    if (c.handler === undefined && !c.reader.partial) this.#release(c);
  }

  /** A free connection takes the next waiting request, or waits itself. */
  #release(c: Connection): void {
    if (this.#destroyed || c.socket.destroyed) return;
    const next = this.#waiting.shift();
    if (next === undefined) this.#idle.push(c);
    else this.#send(c, next.request, next.handler);
  }

  #closed(c: Connection): void {
    this.#all.delete(c);
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
    const h = c.handler;
    c.handler = undefined;
    if (h !== undefined) {
      let last: Http1Response | undefined;
      try {
        last = c.reader.end();
      } catch (err) {
        c.error ??= err as Error;
      }
      if (last !== undefined) h.onResponse(last);
      else h.onError('connection', c.error ?? new Error('the server closed the connection'));
    }
    // Requests waiting for a connection get a new one in place of this.
    if (!this.#destroyed && this.#waiting.length > 0 && this.#all.size < this.#max) {
      const next = this.#waiting.shift() as { request: Buffer; handler: Http1Handler };
      this.#send(this.#connect(), next.request, next.handler);
    }
  }

  #fail(c: Connection, kind: Http1Failure, err: Error): void {
    const h = c.handler;
    c.handler = undefined;
    c.socket.destroy();
    h?.onError(kind, err);
  }

  #expire(): void {
    const now = performance.now();
    for (const c of this.#all)
      if (c.handler !== undefined && now - c.sentAtMs > this.#timeoutMs)
        this.#fail(c, 'timeout', new Error(`no answer within ${this.#timeoutMs} ms`));
  }
}
