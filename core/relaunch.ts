// Runs this command again in a child process with more V8 flags (core/gc-mode.ts), and stands in for it: the
// child's exit code or signal becomes this process's, and a signal sent to this process reaches the child. The
// child has an IPC channel to this process, so it drains and exits if this process dies (even by SIGKILL).
import { spawn } from 'node:child_process';

const FORWARDED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

export function relaunch(flags: readonly string[], args: readonly string[]): void {
  const child = spawn(process.execPath, [...flags, ...process.execArgv, ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const s of FORWARDED) process.on(s, forward);
  child.once('exit', (code, signal) => {
    for (const s of FORWARDED) process.off(s, forward);
    if (signal === null) process.exit(code ?? 1);
    process.kill(process.pid, signal);
  });
  child.once('error', (err) => {
    process.stderr.write(`slogate: could not start ${process.execPath}: ${err.message}\n`);
    process.exit(1);
  });
}
