import { expect, test } from "bun:test";
import { certificateNames, certificateNamesDevice, parseSubjectAltName } from "./cert-identity.ts";

test("subjectAltName entries are split, quoted values unescaped", () => {
  expect(parseSubjectAltName('URI:urn:owsla:dev1, DNS:dev1.local, IP Address:10.0.0.1, DNS:"a, b", email:x@y')).toEqual([
    { kind: "URI", value: "urn:owsla:dev1" },
    { kind: "DNS", value: "dev1.local" },
    { kind: "IP Address", value: "10.0.0.1" },
    { kind: "DNS", value: "a, b" },
    { kind: "email", value: "x@y" },
  ]);
  expect(parseSubjectAltName("")).toEqual([]);
});

test("names come only from a verified certificate: CN values, then DNS, URI and email SANs (not IP)", () => {
  const sock = (authorized: boolean, subject: Record<string, string | string[]>, san?: string) => ({
    authorized,
    getPeerCertificate: () => ({ subject, subjectaltname: san }),
  });
  expect(certificateNames(sock(true, { CN: "dev1", O: "x" }, "DNS:dev1.local, IP Address:10.0.0.1, URI:urn:x"))).toEqual(["dev1", "dev1.local", "urn:x"]);
  expect(certificateNames(sock(true, { CN: ["a", "b"] }))).toEqual(["a", "b"]);
  expect(certificateNames(sock(false, { CN: "dev1" }))).toBeNull();
  expect(certificateNames({ authorized: true })).toBeNull();
  expect(certificateNamesDevice(["dev1"], "dev1")).toBe(true);
  expect(certificateNamesDevice(["dev1"], "DEV1")).toBe(false);
  expect(certificateNamesDevice(["10.0.0.1"], "dev1")).toBe(false);
  expect(certificateNamesDevice(null, "dev1")).toBe(false);
});
