// Atomics.waitAsync (V8, every Node this project supports) is missing from the es2023 lib typings.
export type WaitAsyncResult =
  | { readonly async: false; readonly value: 'not-equal' | 'timed-out' }
  | { readonly async: true; readonly value: Promise<'ok' | 'timed-out'> };

export const waitAsync = (
  Atomics as unknown as { waitAsync(a: Int32Array, index: number, value: number): WaitAsyncResult }
).waitAsync;
