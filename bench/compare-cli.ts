// `slogate bench compare`: placeholder until the compare mode lands.
export async function compareMain(_argv: string[]): Promise<number> {
  process.stderr.write('slogate bench compare: not built yet\n');
  return 2;
}
