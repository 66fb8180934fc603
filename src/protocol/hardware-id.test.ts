import { expect, test } from "bun:test";
import { MAX_HARDWARE_ID, isHardwareId } from "./hardware-id.ts";

test("ordinary ids, including non-ASCII letters and punctuation, are hardware ids", () => {
  for (const id of ["thermo-00042", "lock-9#1000", "Ofen Küche", "urn:owsla:dev1", "温度计-1", "a".repeat(MAX_HARDWARE_ID)]) expect(isHardwareId(id)).toBe(true);
});

test("control and format characters, lone surrogates, empty and over-long strings are refused", () => {
  const bad = ["", "a".repeat(MAX_HARDWARE_ID + 1), "lock\n9", "lock\r9", "a\tb", "\u001b[31mred", "a\u0000b", "a\u007fb", "a\u0085b", "a\u009bb",
    "evil\u202egnp", "a\u200bb", "\ufeffbom", "a\u2028b", "lone\ud800", "\udc00x", 42, null, undefined];
  for (const id of bad) expect(isHardwareId(id)).toBe(false);
});
