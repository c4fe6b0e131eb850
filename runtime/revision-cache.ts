// A runtime node's copies of the revisions gateways sent it, by content: a file is stored only when its bytes hash to
// the name it was sent under, and the directory is bounded in files (the oldest not in use go first).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SlogateError } from '../core/errors.js';
import { writeFileAtomic } from './atomic-file.js';

export const REVISION_NAME = /^sha256:[0-9a-f]{64}$/;

export interface RevisionCacheOptions {
  readonly dir: string;
  readonly maxFileBytes: number;
  /** Files kept at most; the ones in use are never deleted, so the directory may hold more while they are. */
  readonly maxFiles: number;
}

export interface CachedFile {
  readonly revision: string;
  readonly mtimeMs: number;
}

/** The files to delete so that at most `maxFiles` remain: the oldest first, never one in use. Pure. */
export function evictions(files: readonly CachedFile[], maxFiles: number, inUse: ReadonlySet<string>): string[] {
  const excess = files.length - maxFiles;
  if (excess <= 0) return [];
  return [...files]
    .filter((f) => !inUse.has(f.revision))
    .sort((a, b) => a.mtimeMs - b.mtimeMs || (a.revision < b.revision ? -1 : 1))
    .slice(0, excess)
    .map((f) => f.revision);
}

export function checkRevisionName(revision: string): void {
  if (!REVISION_NAME.test(revision))
    throw new SlogateError(
      'SLOGATE_ERR_BAD_REQUEST',
      `a revision is named sha256:<64 hex digits>, not ${JSON.stringify(revision.slice(0, 80))}`,
    );
}

export class RevisionCache {
  readonly #o: RevisionCacheOptions;
  /** Files stored since start (a revision the node already had is not sent again). */
  #received = 0;

  constructor(o: RevisionCacheOptions) {
    this.#o = o;
  }

  get received(): number {
    return this.#received;
  }

  #file(revision: string): string {
    checkRevisionName(revision);
    return join(this.#o.dir, revision.slice(7));
  }

  has(revision: string): boolean {
    return existsSync(this.#file(revision));
  }

  /** The stored file of `revision`; REVISION_NOT_FOUND when the node does not have it. */
  path(revision: string): string {
    const file = this.#file(revision);
    if (!existsSync(file))
      throw new SlogateError('SLOGATE_ERR_REVISION_NOT_FOUND', `this node has no file for ${revision}: send it first`);
    return file;
  }

  /** Stores `bytes` as `revision` after checking its hash and size; false when the file was already there. */
  put(revision: string, bytes: Uint8Array, inUse: ReadonlySet<string>): boolean {
    const file = this.#file(revision);
    if (bytes.byteLength > this.#o.maxFileBytes)
      throw new SlogateError(
        'SLOGATE_ERR_REVISION_TOO_LARGE',
        `the file is ${bytes.byteLength} bytes, over store.maxFileBytes (${this.#o.maxFileBytes})`,
      );
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (actual !== revision)
      throw new SlogateError('SLOGATE_ERR_REVISION_HASH_MISMATCH', `sent as ${revision}, the bytes are ${actual}`);
    if (existsSync(file)) return false;
    mkdirSync(this.#o.dir, { recursive: true });
    writeFileAtomic(file, bytes, 0o444);
    this.#received++;
    for (const r of evictions(this.list(), this.#o.maxFiles, new Set([...inUse, revision])))
      rmSync(this.#file(r), { force: true });
    return true;
  }

  list(): CachedFile[] {
    if (!existsSync(this.#o.dir)) return [];
    return readdirSync(this.#o.dir)
      .filter((n) => /^[0-9a-f]{64}$/.test(n))
      .map((n) => ({ revision: `sha256:${n}`, mtimeMs: statSync(join(this.#o.dir, n)).mtimeMs }));
  }
}
