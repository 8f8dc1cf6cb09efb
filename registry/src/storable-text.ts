/**
 * Text that PostgreSQL can store. Its text and jsonb types hold UTF-8 without NUL: a
 * NUL character is refused with an error, and a lone UTF-16 surrogate has no UTF-8 form
 * at all (the driver would silently store U+FFFD in its place). Input is checked
 * against this once, where it enters, so neither a 500 nor a quietly altered value
 * can come of it.
 */
const UNSTORABLE = /[\0\p{Cs}]/u;

export function isStorableText(text: string): boolean {
  return !UNSTORABLE.test(text);
}

/** `text` with every character that cannot be stored replaced by U+FFFD. */
export function toStorableText(text: string): string {
  return text.replace(/[\0\p{Cs}]/gu, '\uFFFD');
}

/** `text` made storable and shortened: safe to echo in messages and logs. */
export function printable(text: string, max = 100): string {
  return toStorableText(text.length > max ? `${text.slice(0, max)}…` : text);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** Whether any string or object key in a parsed JSON-like value cannot be stored. The fast pass: every request takes it. */
function holdsUnstorableText(root: unknown): boolean {
  const stack = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (UNSTORABLE.test(value)) return true;
    } else if (Array.isArray(value)) {
      for (const item of value) stack.push(item);
    } else if (isRecord(value)) {
      for (const key in value) {
        if (UNSTORABLE.test(key)) return true;
        stack.push(value[key]);
      }
    }
  }
  return false;
}

/**
 * The path (`permissions[0].namespace`, or `(root)`) of the first string or object key in
 * a parsed JSON-like value that cannot be stored, shortened to 200 characters; undefined
 * when all can. Binary values (Buffers) are not text and are skipped. Iterative, so deep
 * nesting cannot overflow.
 */
export function findUnstorableText(root: unknown): string | undefined {
  if (!holdsUnstorableText(root)) return undefined;
  const stack: { value: unknown; path: string }[] = [{ value: root, path: '' }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      if (!isStorableText(value)) return path ? printable(path, 200) : '(root)';
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}[${i}]` });
    } else if (isRecord(value)) {
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        const childPath = path ? `${path}.${printable(key)}` : printable(key);
        if (!isStorableText(key)) return `${printable(childPath, 200)} (a key)`;
        stack.push({ value: value[key], path: childPath });
      }
    }
  }
  return undefined;
}
