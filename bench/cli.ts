// `slogate bench`: placeholder entry point, filled in by the bench module.
export async function benchMain(_argv: string[]): Promise<void> {
  process.stderr.write('slogate bench: not built yet\n');
  process.exitCode = 2;
}
