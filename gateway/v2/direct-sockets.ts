// Ordinary inference requests read straight off their connections, before node:http parses them. node:http costs
// more per request than the rest of HTTP together (its parser's callbacks, the request and response streams, header
// checks): this reads a request whose head is plainly an ordinary inference request (the direct path's kind, in a
// strict subset of HTTP/1.1), serves it through the direct path and writes the answer itself. At the first request it
// does not take, or one that does not arrive in full in time, the connection goes to node:http for good, with the
// bytes read so far, at a request boundary and once its own answers are written: node:http and Fastify then answer
// it, and everything after it on that connection, as they always do.
import { type Server, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { type DirectRequest, type InferDirect, type InferTarget, inferTarget } from './infer-direct.js';

export interface DirectSocketsOptions {
  readonly direct: InferDirect;
  /** A request must arrive in full within this of its first byte, or its connection goes to node:http (ms). */
  readonly arrivalMs: number;
  /** An idle keep-alive connection closes after this (ms), as node:http's do. */
  readonly keepAliveMs: number;
}

/** Larger heads go to node:http, which answers 431 past its own limit. */
const MAX_HEAD_BYTES = 8 * 1024;
/**
 * Bytes read ahead of what is being served: a larger request that has not arrived whole goes to node:http, which
 * holds its body against the in-flight budget as it arrives, and a connection with more waiting stops being read.
 */
const MAX_WAITING_BYTES = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
/** Longer declared lengths are past any body limit (see infer-direct.ts). */
const MAX_LENGTH_DIGITS = 15;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;
const PATH = /^\/[\x21-\x7e]*$/;

/**
 * Reads inference requests off the server's plain-HTTP connections (not TLS: those bytes are not HTTP yet). False
 * when the server has another connection listener than node:http's own, and nothing changes.
 */
export function readSocketsDirectly(server: Server, options: DirectSocketsOptions): boolean {
  const listeners = server.listeners('connection');
  const nodeHttp = listeners[0] as ((socket: Socket) => void) | undefined;
  if (server instanceof TlsServer || listeners.length !== 1 || nodeHttp === undefined) return false;
  const open = new Set<DirectConnection>();
  server.removeListener('connection', nodeHttp);
  server.on('connection', (socket: Socket) => {
    const c = new DirectConnection(socket, options, () => {
      open.delete(c);
      nodeHttp.call(server, socket);
    });
    c.onGone = () => open.delete(c);
    open.add(c);
  });
  // node:http closes only the connections it parses: shutdown and drain reach these too.
  const closeIdle = server.closeIdleConnections.bind(server);
  const closeAll = server.closeAllConnections.bind(server);
  server.closeIdleConnections = () => {
    closeIdle();
    for (const c of open) if (c.idle) c.destroy();
  };
  server.closeAllConnections = () => {
    closeAll();
    for (const c of open) c.destroy();
  };
  return true;
}

/** A request head this path takes: POST, HTTP/1.1, one decimal Content-Length, nothing that changes framing. */
export interface DirectHead extends DirectRequest {
  readonly bodyBytes: number;
}

/** The head's fields, or undefined for any request left to node:http. */
export function parseDirectHead(head: string): DirectHead | undefined {
  let at = head.indexOf('\r\n');
  const line = at < 0 ? head : head.slice(0, at);
  if (!line.startsWith('POST ') || !line.endsWith(' HTTP/1.1')) return undefined;
  const url = line.slice(5, line.length - 9);
  if (!PATH.test(url)) return undefined;
  let bodyBytes = -1;
  let contentType: string | undefined;
  let jsonLength: string | undefined;
  let requestId: string | undefined;
  let host = false;
  while (at >= 0) {
    const start = at + 2;
    at = head.indexOf('\r\n', start);
    const field = at < 0 ? head.slice(start) : head.slice(start, at);
    const colon = field.indexOf(':');
    if (colon <= 0) return undefined;
    const name = field.slice(0, colon).toLowerCase();
    const value = field.slice(colon + 1).trim();
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) return undefined;
    if (name === 'content-length') {
      if (bodyBytes >= 0) return undefined;
      bodyBytes = decimal(value);
    } else if (name === 'content-type') {
      if (contentType !== undefined) return undefined;
      contentType = value;
    } else if (name === 'inference-header-content-length') jsonLength = value;
    else if (name === 'x-request-id') requestId = value;
    else if (name === 'host') host = true;
    else if (name === 'connection') {
      if (value.toLowerCase() !== 'keep-alive') return undefined;
    } else if (name === 'transfer-encoding' || name === 'expect' || name === 'upgrade') return undefined;
  }
  if (bodyBytes <= 0 || !host) return undefined;
  return { url, bodyBytes, contentType, jsonLength, requestId };
}

function decimal(s: string): number {
  if (s.length === 0 || s.length > MAX_LENGTH_DIGITS) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** One connection while this path reads it. */
class DirectConnection {
  readonly #socket: Socket;
  readonly #o: DirectSocketsOptions;
  readonly #handOver: () => void;
  /** Bytes read and not yet taken: always from a request's first byte. */
  #pending: Buffer | undefined;
  /** The exchange being served: nothing more is read until its answer is written. */
  #serving: { close(): void } | undefined;
  #waitTimer: NodeJS.Timeout | undefined;
  #done = false;
  /** The last head read and its fields: a client's requests on one connection mostly repeat their head. */
  #lastHead: { readonly bytes: Buffer; readonly head: DirectHead } | undefined;
  onGone: () => void = () => {};

  constructor(socket: Socket, options: DirectSocketsOptions, handOver: () => void) {
    this.#socket = socket;
    this.#o = options;
    this.#handOver = handOver;
    socket.setNoDelay(true);
    socket.setTimeout(options.keepAliveMs);
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('timeout', this.#onTimeout);
    socket.on('close', this.#onClose);
    socket.on('error', noop);
  }

  /** Nothing read and nothing being served: a keep-alive connection between requests. */
  get idle(): boolean {
    return this.#serving === undefined && this.#pending === undefined;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#pending = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    if (this.#serving !== undefined && this.#pending.byteLength > MAX_WAITING_BYTES) this.#socket.pause();
    this.#next();
  };

  /** The client closed its side: as node:http does, the request being served is given up and the socket ended. */
  readonly #onEnd = (): void => {
    this.#serving?.close();
    this.#stop();
    this.#socket.end();
  };

  readonly #onTimeout = (): void => {
    if (this.idle) this.#socket.destroy();
    else this.#socket.setTimeout(this.#o.keepAliveMs);
  };

  readonly #onClose = (): void => {
    this.#stop();
    this.#serving?.close();
    this.onGone();
  };

  /** Takes every complete request in the bytes read, one at a time; hands the connection over at the first other. */
  #next(): void {
    while (this.#serving === undefined && !this.#done) {
      const bytes = this.#pending;
      if (bytes === undefined) return;
      const end = bytes.indexOf(HEAD_END);
      if (end < 0) {
        if (bytes.byteLength > MAX_HEAD_BYTES) this.#leave();
        else this.#waitForRest();
        return;
      }
      const head = end > MAX_HEAD_BYTES ? undefined : this.#head(bytes, end);
      const target = head === undefined ? undefined : inferTarget(head.url);
      if (head === undefined || target === undefined || !this.#o.direct.takes(head, target)) {
        this.#leave();
        return;
      }
      const total = end + 4 + head.bodyBytes;
      if (bytes.byteLength < total) {
        if (total > MAX_WAITING_BYTES) this.#leave();
        else this.#waitForRest();
        return;
      }
      this.#clearWait();
      this.#pending = bytes.byteLength === total ? undefined : bytes.subarray(total);
      this.#serve(head, target, bytes.subarray(end + 4, total));
    }
  }

  /** The head in bytes[0, end): the last one's fields when it repeats it byte for byte, else parsed. */
  #head(bytes: Buffer, end: number): DirectHead | undefined {
    const last = this.#lastHead;
    if (last !== undefined && last.bytes.byteLength === end && bytes.compare(last.bytes, 0, end, 0, end) === 0)
      return last.head;
    const head = parseDirectHead(bytes.toString('latin1', 0, end));
    if (head === undefined) return undefined;
    // Its own memory, not a slice of the shared pool: an idle connection would keep a pool's 8 KB alive.
    const copy = Buffer.allocUnsafeSlow(end);
    bytes.copy(copy, 0, 0, end);
    this.#lastHead = { bytes: copy, head };
    return head;
  }

  #serve(head: DirectHead, target: InferTarget, body: Buffer): void {
    const exchange = this.#o.direct.serveRead(head, target, body, (status, headers, payload) =>
      this.#write(status, headers, payload),
    );
    if (exchange === undefined) return;
    this.#serving = exchange;
    exchange.answered.then(() => {
      this.#serving = undefined;
      if (this.#done) return;
      this.#socket.resume();
      this.#next();
    });
  }

  /** Writes one answer (status line, headers as node:http writes them, body) in one write. */
  #write(status: number, headers: Record<string, string>, body: Buffer | string): void {
    const closing = headers.connection === 'close';
    let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
    for (const name in headers) text += `${name}: ${headers[name]}\r\n`;
    text += `Date: ${httpDate()}\r\n`;
    text += closing ? '\r\n' : `Connection: keep-alive\r\nKeep-Alive: timeout=${keepAliveSeconds(this.#o)}\r\n\r\n`;
    const socket = this.#socket;
    if (!socket.writable) return;
    socket.write(wholeAnswer(text, body));
    if (closing) {
      this.#stop();
      socket.end();
    }
  }

  /** A request that has not fully arrived: it has until the arrival bound, then its connection goes to node:http. */
  #waitForRest(): void {
    this.#waitTimer ??= setTimeout(() => {
      this.#waitTimer = undefined;
      this.#leave();
    }, this.#o.arrivalMs);
  }

  #clearWait(): void {
    if (this.#waitTimer === undefined) return;
    clearTimeout(this.#waitTimer);
    this.#waitTimer = undefined;
  }

  /** Hands the connection to node:http with the bytes read so far (a request's first byte on). */
  #leave(): void {
    if (this.#done) return;
    this.#stop();
    const socket = this.#socket;
    socket.removeListener('data', this.#onData);
    socket.removeListener('end', this.#onEnd);
    socket.removeListener('timeout', this.#onTimeout);
    socket.removeListener('close', this.#onClose);
    socket.removeListener('error', noop);
    socket.setTimeout(0);
    socket.pause();
    this.#handOver();
    if (this.#pending !== undefined) socket.unshift(this.#pending);
    this.#pending = undefined;
    socket.resume();
  }

  #stop(): void {
    this.#done = true;
    this.#clearWait();
  }
}

/** Head and body in one buffer: one plain write, rather than a corked pair that the stream gathers into a writev. */
function wholeAnswer(head: string, body: Buffer | string): Buffer {
  const bodyBytes = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  const out = Buffer.allocUnsafe(head.length + bodyBytes);
  out.write(head, 0, 'latin1');
  if (typeof body === 'string') out.write(body, head.length, 'utf8');
  else out.set(body, head.length);
  return out;
}

function noop(): void {}

function keepAliveSeconds(o: DirectSocketsOptions): number {
  return Math.floor(o.keepAliveMs / 1000);
}

let dateSecond = -1;
let dateText = '';

/** The Date header's value, made once a second (as node:http does). */
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}
