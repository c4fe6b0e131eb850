// An HTTP/1.1 response reader for the bench's own client (bench/http1-pool.ts): bytes in as they arrive, whole
// responses out. It knows what a load generator needs and no more: the status, the headers (names lower-cased), a
// body framed by Content-Length or chunked transfer coding (or by the connection's end), 1xx responses skipped, and
// whether the server keeps the connection open.

export interface Http1Response {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** False when the server closes the connection after this response. */
  readonly keepAlive: boolean;
}

/** A head longer than this is refused: no server under test sends one. */
const MAX_HEAD_BYTES = 64 * 1024;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

export class Http1ProtocolError extends Error {}

interface Head {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly keepAlive: boolean;
  /** Body bytes to read; -1: chunked; Infinity: until the connection ends. */
  readonly length: number;
}

export class Http1ResponseReader {
  #buf: Buffer | undefined;
  #head: Head | undefined;
  /** Chunked bodies: the chunks read so far. */
  #chunks: Buffer[] = [];

  /** Adds bytes; returns the responses they complete, in order (throws Http1ProtocolError on a broken response). */
  push(chunk: Buffer): Http1Response[] {
    this.#buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Http1Response[] = [];
    for (;;) {
      const r = this.#next();
      if (r === undefined) return out;
      out.push(r);
    }
  }

  /** The connection ended: the response being read by its end, if any; throws if one was cut short. */
  end(): Http1Response | undefined {
    const head = this.#head;
    if (head === undefined) {
      if (this.#buf !== undefined && this.#buf.byteLength > 0) throw new Http1ProtocolError('response cut short');
      return undefined;
    }
    if (head.length !== Number.POSITIVE_INFINITY) throw new Http1ProtocolError('response body cut short');
    this.#head = undefined;
    const body = this.#buf ?? Buffer.alloc(0);
    this.#buf = undefined;
    return { status: head.status, headers: head.headers, body, keepAlive: false };
  }

  /** Whether part of a response has arrived and the rest has not. */
  get partial(): boolean {
    return this.#head !== undefined || (this.#buf !== undefined && this.#buf.byteLength > 0);
  }

  #next(): Http1Response | undefined {
    const buf = this.#buf;
    if (buf === undefined) return undefined;
    if (this.#head === undefined) {
      const at = buf.indexOf(HEAD_END);
      if (at < 0) {
        if (buf.byteLength > MAX_HEAD_BYTES) throw new Http1ProtocolError('response head too large');
        return undefined;
      }
      const head = parseHead(buf.toString('latin1', 0, at));
      this.#take(at + HEAD_END.byteLength);
      if (head.status < 200) return this.#next(); // 1xx: another head follows
      this.#head = head;
    }
    const head = this.#head;
    const body = head.length === -1 ? this.#chunked() : this.#sized(head.length);
    if (body === undefined) return undefined;
    this.#head = undefined;
    return { status: head.status, headers: head.headers, body, keepAlive: head.keepAlive };
  }

  #sized(length: number): Buffer | undefined {
    if (length === 0) return Buffer.alloc(0);
    const buf = this.#buf;
    if (buf === undefined || buf.byteLength < length) return undefined;
    const body = buf.subarray(0, length);
    this.#take(length);
    return body;
  }

  /** The chunked body once its last chunk and trailers have arrived. */
  #chunked(): Buffer | undefined {
    for (;;) {
      const buf = this.#buf;
      if (buf === undefined) return undefined;
      const eol = buf.indexOf(CRLF);
      if (eol < 0) return undefined;
      const size = Number.parseInt(buf.toString('latin1', 0, eol).split(';')[0] as string, 16);
      if (!Number.isInteger(size) || size < 0) throw new Http1ProtocolError('bad chunk size');
      if (size === 0) {
        // The last chunk: trailer lines (if any) up to an empty line. With none, the empty line starts at eol.
        const end = buf.indexOf(HEAD_END, eol);
        if (end < 0) return undefined;
        this.#take(end + HEAD_END.byteLength);
        const body = Buffer.concat(this.#chunks);
        this.#chunks = [];
        return body;
      }
      if (buf.byteLength < eol + 2 + size + 2) return undefined;
      if (buf[eol + 2 + size] !== 13 || buf[eol + 3 + size] !== 10)
        throw new Http1ProtocolError('chunk not ended by CRLF');
      this.#chunks.push(buf.subarray(eol + 2, eol + 2 + size));
      this.#take(eol + 2 + size + 2);
    }
  }

  #take(n: number): void {
    const buf = this.#buf as Buffer;
    this.#buf = n >= buf.byteLength ? undefined : buf.subarray(n);
  }
}

function parseHead(text: string): Head {
  const lines = text.split('\r\n');
  const statusLine = lines[0] as string;
  const m = /^HTTP\/1\.([01]) (\d{3})/.exec(statusLine);
  if (m === null) throw new Http1ProtocolError(`bad status line '${statusLine.slice(0, 40)}'`);
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Http1ProtocolError('bad header line');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const status = Number(m[2]);
  const connection = headers.connection?.toLowerCase();
  const keepAlive = m[1] === '1' ? connection !== 'close' : connection === 'keep-alive';
  return { status, headers, keepAlive, length: bodyLength(status, headers) };
}

function bodyLength(status: number, headers: Record<string, string>): number {
  if (status === 204 || status === 304) return 0;
  const te = headers['transfer-encoding'];
  if (te !== undefined) {
    if (te.toLowerCase().split(',').at(-1)?.trim() === 'chunked') return -1;
    return Number.POSITIVE_INFINITY;
  }
  const cl = headers['content-length'];
  if (cl === undefined) return Number.POSITIVE_INFINITY;
  if (!/^\d+$/.test(cl)) throw new Http1ProtocolError(`bad content-length '${cl.slice(0, 20)}'`);
  return Number(cl);
}
