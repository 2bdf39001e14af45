import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { displayLimit, formatBytes, formatValue, hex, hexDump, plural, utf8 } from "../src/format.js";

describe("value formatting", () => {
  it("dumps hex with offsets, 16 bytes a line", () => {
    const bytes = Uint8Array.from({ length: 18 }, (_, i) => i * 15);
    assert.equal(
      hexDump(bytes),
      "00000000  00 0f 1e 2d 3c 4b 5a 69 78 87 96 a5 b4 c3 d2 e1\n00000010  f0 ff",
    );
    assert.equal(hexDump(new Uint8Array()), "");
  });

  it("shows UTF-8 text, and hex when the bytes are not UTF-8", () => {
    assert.deepEqual(formatValue(new TextEncoder().encode("héllo ⚡"), "utf8"), { text: "héllo ⚡", format: "utf8" });
    assert.deepEqual(formatValue(Uint8Array.of(0xff, 0x00), "utf8"), { text: "00000000  ff 00", format: "hex" });
    assert.deepEqual(formatValue(new TextEncoder().encode("hi"), "hex"), { text: "00000000  68 69", format: "hex" });
    assert.equal(utf8(Uint8Array.of(0xe2, 0x9a)), undefined);
    assert.equal(utf8(Uint8Array.of(0x61, 0xe2, 0x9a), true), "a");
  });

  it("cuts long values, even inside a character", () => {
    const text = "€".repeat(displayLimit); // 3 bytes each
    const { text: shown, format } = formatValue(new TextEncoder().encode(text), "utf8");
    assert.equal(format, "utf8");
    assert.ok(shown.startsWith("€€€"));
    assert.ok(shown.endsWith(`(showing the first ${displayLimit} of ${3 * displayLimit} bytes)`), shown.slice(-80));
  });

  it("writes checksums, sizes and counts for people", () => {
    assert.equal(hex(Uint8Array.of(0x00, 0x0f, 0xa0, 0xff)), "000fa0ff");
    assert.equal(formatBytes(1), "1 byte");
    assert.equal(formatBytes(1023), "1023 bytes");
    assert.equal(formatBytes(1536), "1.5 KiB");
    assert.equal(formatBytes(3 << 20), "3.0 MiB");
    assert.equal(formatBytes(5 * 2 ** 40), "5.0 TiB");
    assert.deepEqual([plural(1, "store"), plural(2, "store"), plural(0, "entry", "entries")], ["1 store", "2 stores", "0 entries"]);
  });
});
