// Client values echoed in error messages: bounded in depth and length, so that describing a hostile value can
// neither recurse without limit (JSON.stringify does; JSON.parse does not) nor send megabytes back.

/** Characters of a client string kept in a message. */
export const CLIPPED_TEXT_CHARS = 64;
/** Characters of a whole described value. */
export const DESCRIBED_VALUE_CHARS = 40;
/** Array elements and object keys shown per level; deeper levels show as `[...]` and `{...}`. */
const ITEMS_SHOWN = 4;
const DEPTH_SHOWN = 2;

/** The string as is when short, else its first `maxChars` characters and its length. */
export function clipText(s: string, maxChars = CLIPPED_TEXT_CHARS): string {
  return s.length <= maxChars ? s : `${s.slice(0, maxChars)}... (${s.length} chars)`;
}

/** A short, always-printable description of any JSON value (strings quoted, containers abridged). */
export function describeValue(v: unknown, maxChars = DESCRIBED_VALUE_CHARS): string {
  const text = describe(v, DEPTH_SHOWN);
  return text.length <= maxChars ? text : `${text.slice(0, maxChars)}...`;
}

function describe(v: unknown, depth: number): string {
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return JSON.stringify(clipText(v, 20));
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    if (depth === 0) return '[...]';
    const shown = v.slice(0, ITEMS_SHOWN).map((x: unknown) => describe(x, depth - 1));
    return `[${shown.join(',')}${v.length > ITEMS_SHOWN ? ',...' : ''}]`;
  }
  if (typeof v === 'object') {
    // for..in stops after a few keys (Object.keys would list them all); JSON.parse makes only own, plain keys.
    const shown: string[] = [];
    let more = false;
    for (const k in v) {
      if (depth === 0 || shown.length === ITEMS_SHOWN) {
        more = true;
        break;
      }
      shown.push(`${JSON.stringify(clipText(k, 20))}:${describe((v as Record<string, unknown>)[k], depth - 1)}`);
    }
    return `{${shown.join(',')}${more ? (shown.length === 0 ? '...' : ',...') : ''}}`;
  }
  return typeof v;
}
