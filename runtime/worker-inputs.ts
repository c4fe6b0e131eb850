// A batch's inputs as they are posted to a worker, and the buffers that move with them. Posting a typed array clones
// its whole buffer, so a view into a larger one (a slab's, a request body's) is first copied into a buffer of its own,
// which then moves. A whole buffer moves when the task may give it up (a retry needs it otherwise) and is cloned else.
import type { NumericArray } from '../core/types.js';
import type { WireTensor } from './worker/messages.js';

export interface PostedInputs {
  readonly inputs: WireTensor[];
  readonly transferList: ArrayBuffer[];
}

export function postedInputs(inputs: readonly WireTensor[], transfer: boolean): PostedInputs {
  const transferList: ArrayBuffer[] = [];
  const posted = inputs.map((t) => {
    if (Array.isArray(t.data)) return t;
    const d = t.data as NumericArray;
    if (d.byteOffset !== 0 || d.byteLength !== d.buffer.byteLength) {
      const copy = d.slice();
      transferList.push(copy.buffer as ArrayBuffer);
      return { ...t, data: copy };
    }
    if (transfer && d.buffer instanceof ArrayBuffer && !transferList.includes(d.buffer)) transferList.push(d.buffer);
    return t;
  });
  return { inputs: posted, transferList };
}
