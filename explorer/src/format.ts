/** displayLimit is how many bytes of a value the page shows; values can be megabytes. */
export const displayLimit = 64 * 1024;

/**
 * hexDump formats bytes as lines of 16 hexadecimal bytes, each line led by its offset.
 */
export function hexDump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const row = Array.from(bytes.subarray(off, off + 16), (b) => b.toString(16).padStart(2, "0"));
    lines.push(off.toString(16).padStart(8, "0") + "  " + row.join(" "));
  }
  return lines.join("\n");
}

/**
 * utf8 decodes bytes as UTF-8, or returns undefined when they are not valid UTF-8. With
 * partial set, bytes may end in the middle of a character (a value cut for display).
 */
export function utf8(bytes: Uint8Array, partial = false): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: partial });
  } catch {
    return undefined;
  }
}

/**
 * formatValue renders a value as UTF-8 text or a hex dump, showing at most displayLimit
 * bytes. Text that is not valid UTF-8 falls back to hex.
 */
export function formatValue(bytes: Uint8Array, format: "utf8" | "hex"): { text: string; format: "utf8" | "hex" } {
  const shown = bytes.subarray(0, displayLimit);
  let text: string | undefined;
  let used = format;
  if (format === "utf8") {
    text = utf8(shown, shown.length < bytes.length);
    if (text === undefined) {
      used = "hex";
    }
  }
  if (used === "hex") {
    text = hexDump(shown);
  }
  if (shown.length < bytes.length) {
    text += `\n… (showing the first ${shown.length} of ${bytes.length} bytes)`;
  }
  return { text: text ?? "", format: used };
}

/** hex writes bytes as lowercase hexadecimal, without spaces. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** formatBytes writes a size for people: bytes, KiB, MiB or GiB, with one decimal. */
export function formatBytes(n: number): string {
  if (n < 1024) {
    return `${n} byte${n === 1 ? "" : "s"}`;
  }
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** plural writes a count with its noun, e.g. "1 store", "2 stores", "3 entries". */
export function plural(n: number, one: string, many = one + "s"): string {
  return `${n} ${n === 1 ? one : many}`;
}
