// Crash-safe file replacement: a reader (or a restart after kill -9) sees the old bytes or the new ones, never a mix.
// The bytes go to a temporary file beside the target, are fsynced, renamed over it, and the directory is fsynced so
// the rename itself survives a power loss.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

let sequence = 0;

/** Replaces `path` with `bytes` atomically; the temporary file never outlives a failed write. */
export function writeFileAtomic(path: string, bytes: Uint8Array | string, mode = 0o644): void {
  const data = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  const tmp = join(dirname(path), `.${process.pid}.${++sequence}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    for (let off = 0; off < data.byteLength; ) off += writeSync(fd, data, off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  syncDirectory(dirname(path));
}

/** Makes a rename or unlink in `dir` durable; a no-op where directories cannot be opened for sync. */
export function syncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    closeSync(fd);
  }
}
