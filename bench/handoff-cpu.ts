// `node dist/bench/handoff-cpu.js`: CPU of both threads per batch handed from the event loop to a worker thread and
// back, by hand-off: `port` (a MessagePort, structured clone with the buffers transferred) or `shared` (a slot in a
// SharedArrayBuffer, Atomics.notify to wake, Atomics.waitAsync on both sides), for batches of --rows rows of 784
// floats. One batch at a time, the next --gap-ms after the answer (both threads fall idle between batches, as they do
// at a serving rate). With --model FILE the worker runs the ONNX model on each batch (inputs copied out of the slot:
// onnxruntime-node refuses views over shared memory); without, it answers 10 floats per row. CPU per thread comes from
// /proc/self/task/<tid>/schedstat (nanoseconds). Linux only.
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isMainThread, MessageChannel, type MessagePort, parentPort, Worker, workerData } from 'node:worker_threads';

const FEATURES = 784;
const OUT_PER_ROW = 10;
/** Control words: [0] doorbell (main -> worker), [1] reply bell (worker -> main), [2] rows of the batch in the slot. */
const CTL_WORDS = 4;

/**
 * none: no hand-off (the timer loop and a fresh batch buffer, the floor). shared-direct: the rows go straight into the
 * slot, no batch buffer of their own (as when the batch is stacked in the slot).
 */
type Mode = 'port' | 'shared' | 'shared-direct' | 'none';

interface WorkerSetup {
  readonly mode: Mode;
  readonly model: string | undefined;
  readonly port: MessagePort;
  readonly sab: SharedArrayBuffer;
}

/** Atomics.waitAsync (Node 16+, V8), missing from the es2023 lib typings. */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      a: Int32Array,
      i: number,
      v: number,
    ): { async: false; value: string } | { async: true; value: Promise<string> };
  }
).waitAsync;

interface Answer {
  outputs: Float32Array;
}

function threadNs(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task'))
    try {
      out.set(Number(tid), Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // the thread ended meanwhile
    }
  return out;
}

function mainTid(): number {
  return Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ')[0]);
}

// ---------- worker ----------

type Infer = (x: Float32Array, rows: number) => Promise<Float32Array>;

async function makeInfer(model: string | undefined): Promise<Infer> {
  if (model === undefined)
    return async (x, rows) => {
      const out = new Float32Array(rows * OUT_PER_ROW);
      for (let r = 0; r < rows; r++) out[r * OUT_PER_ROW] = x[r * FEATURES] as number;
      return out;
    };
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  const input = session.inputNames[0] as string;
  const output = session.outputNames[0] as string;
  return async (x, rows) => {
    const r = await session.run({ [input]: new ort.Tensor('float32', x, [rows, FEATURES]) }, [output]);
    return r[output]?.data as Float32Array;
  };
}

async function workerMain(setup: WorkerSetup): Promise<void> {
  const infer = await makeInfer(setup.model);
  if (setup.mode === 'port') {
    setup.port.on('message', (m: { id: number; task: { rows: number; data: Float32Array } }) => {
      void infer(m.task.data, m.task.rows).then((outputs) =>
        setup.port.postMessage({ id: m.id, result: { outputs } }, [outputs.buffer as ArrayBuffer]),
      );
    });
  } else {
    // A pending Atomics.waitAsync keeps no thread alive: the port does (as piscina's does in the real worker).
    setup.port.on('message', () => {});
    const ctl = new Int32Array(setup.sab, 0, CTL_WORDS);
    const slot = new Float32Array(setup.sab, CTL_WORDS * 4);
    let seen = 0;
    const wait = (): void => {
      const w = waitAsync(ctl, 0, seen);
      const go = (): void => {
        seen = Atomics.load(ctl, 0);
        const rows = Atomics.load(ctl, 2);
        // onnxruntime-node reads only unshared memory: one copy out of the slot.
        const x = slot.slice(0, rows * FEATURES);
        void infer(x, rows).then((out) => {
          slot.set(out.subarray(0, rows * OUT_PER_ROW), 0);
          Atomics.add(ctl, 1, 1);
          Atomics.notify(ctl, 1);
        });
        wait();
      };
      if (w.async) void w.value.then(go);
      else go();
    };
    wait();
  }
  parentPort?.postMessage('ready');
}

// ---------- main ----------

class PortSide {
  readonly #pending = new Map<number, (a: Answer) => void>();
  #next = 0;
  constructor(readonly port: MessagePort) {
    port.on('message', (m: { id: number; result: Answer }) => {
      const r = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      r?.(m.result);
    });
  }
  run(rows: number, data: Float32Array): Promise<Answer> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.port.postMessage({ id, task: { rows, data } }, [data.buffer as ArrayBuffer]);
    });
  }
}

class SharedSide {
  readonly #ctl: Int32Array;
  readonly #slot: Float32Array;
  #replies = 0;
  constructor(sab: SharedArrayBuffer) {
    this.#ctl = new Int32Array(sab, 0, CTL_WORDS);
    this.#slot = new Float32Array(sab, CTL_WORDS * 4);
  }
  async run(rows: number, data: Float32Array): Promise<Answer> {
    this.#slot.set(data, 0);
    Atomics.store(this.#ctl, 2, rows);
    const w = waitAsync(this.#ctl, 1, this.#replies);
    Atomics.add(this.#ctl, 0, 1);
    Atomics.notify(this.#ctl, 0);
    if (w.async) await w.value;
    this.#replies = Atomics.load(this.#ctl, 1);
    return { outputs: this.#slot.slice(0, rows * OUT_PER_ROW) };
  }
}

async function measure(
  mode: Mode,
  rows: number,
  batches: number,
  gapMs: number,
  model: string | undefined,
): Promise<Run> {
  const { port1, port2 } = new MessageChannel();
  const sab = new SharedArrayBuffer(CTL_WORDS * 4 + 64 * FEATURES * 4);
  const worker = new Worker(new URL(import.meta.url), {
    workerData: { mode, model, port: port2, sab } satisfies WorkerSetup,
    transferList: [port2],
  });
  await new Promise((resolve) => worker.once('message', resolve));
  const side =
    mode === 'port'
      ? new PortSide(port1)
      : mode === 'shared' || mode === 'shared-direct'
        ? new SharedSide(sab)
        : { run: async (r: number) => ({ outputs: new Float32Array(r * OUT_PER_ROW) }) };
  const src = new Float32Array(rows * FEATURES).map(() => Math.random());
  const me = mainTid();
  const one = async (): Promise<void> => {
    // A fresh batch each time, as the scheduler stacks one.
    const a = await side.run(rows, mode === 'shared-direct' ? src : src.slice());
    if (a.outputs.length !== rows * OUT_PER_ROW && model === undefined) throw new Error('short answer');
    await new Promise((r) => setTimeout(r, gapMs));
  };
  for (let i = 0; i < Math.min(200, batches); i++) await one();
  const t0 = threadNs();
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < batches; i++) await one();
  const wallMs = performance.now() - w0;
  const cpu = process.cpuUsage(cpu0);
  const t1 = threadNs();
  let mainNs = 0;
  let otherNs = 0;
  for (const [tid, ns] of t1) {
    const d = ns - (t0.get(tid) ?? 0);
    if (tid === me) mainNs += d;
    else otherNs += d;
  }
  const per = (ns: number): number => Math.round((ns / 1000 / batches) * 10) / 10;
  const run: Run = {
    mode,
    rows,
    batches,
    model: model ?? 'none',
    processUsPerBatch: per((cpu.user + cpu.system) * 1000),
    eventLoopUsPerBatch: per(mainNs),
    otherThreadsUsPerBatch: per(otherNs),
    wallMsPerBatch: Math.round((wallMs / batches) * 1000) / 1000,
  };
  console.log(JSON.stringify(run));
  port1.close();
  await worker.terminate();
  return run;
}

interface Run {
  readonly mode: Mode;
  readonly rows: number;
  readonly batches: number;
  readonly model: string;
  readonly processUsPerBatch: number;
  readonly eventLoopUsPerBatch: number;
  readonly otherThreadsUsPerBatch: number;
  readonly wallMsPerBatch: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Medians over the rounds, one line per mode and batch size. */
function summary(runs: readonly Run[]): void {
  console.log('| mode | rows | process us/batch | event loop | other threads | (medians of) |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  const keys = [...new Set(runs.map((r) => `${r.rows}\u0000${r.mode}`))];
  for (const k of keys) {
    const rs = runs.filter((r) => `${r.rows}\u0000${r.mode}` === k);
    const f = (g: (r: Run) => number): string => median(rs.map(g)).toFixed(0);
    const [rows, mode] = k.split('\u0000');
    console.log(
      `| ${mode} | ${rows} | ${f((r) => r.processUsPerBatch)} | ${f((r) => r.eventLoopUsPerBatch)} | ${f((r) => r.otherThreadsUsPerBatch)} | ${rs.length} runs |`,
    );
  }
}

if (isMainThread) {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1,4,16' },
      batches: { type: 'string', default: '1000' },
      'gap-ms': { type: 'string', default: '1' },
      modes: { type: 'string', default: 'none,port,shared,shared-direct' },
      rounds: { type: 'string', default: '5' },
      model: { type: 'string' },
    },
  });
  const batches = Number(values.batches);
  if (!(batches > 0 && batches <= 100_000)) throw new Error('--batches in (0, 100000]');
  const runs: Run[] = [];
  for (let round = 0; round < Number(values.rounds); round++)
    for (const rows of values.rows.split(',').map(Number))
      for (const mode of values.modes.split(',') as Mode[])
        runs.push(await measure(mode, rows, batches, Number(values['gap-ms']), values.model));
  summary(runs);
} else {
  void workerMain(workerData as WorkerSetup);
}
