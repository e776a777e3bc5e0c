// What podvisor prints never carries raw control characters from its input: a file name or a
// value with a newline could forge a log line, and one with an escape sequence could drive the
// operator's terminal. They are shown escaped instead, as \n, \x1b, \u202e.

// C0 and C1 controls, DEL, and the Unicode bidirectional overrides (which reorder a line as shown).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** The text with every control character written as an escape. */
export function escapeText(text: string): string {
  return text.replace(UNSAFE, (char) => {
    const named = NAMED[char];
    if (named) return named;
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
