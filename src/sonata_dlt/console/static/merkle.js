// RFC 9162 inclusion-proof verification in the browser, with WebCrypto SHA-256 (no library, no build step).
// Mirrors sonata_dlt.transparency.merkle.verify_inclusion: leaf hash = SHA-256(0x00 || record),
// node hash = SHA-256(0x01 || left || right), audit path walked from the leaf up (RFC 9162 section 2.1.3.2).
"use strict";

const Merkle = (() => {
  const b64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  async function sha256(...parts) {
    const size = parts.reduce((n, p) => n + p.length, 0);
    const joined = new Uint8Array(size);
    let at = 0;
    for (const part of parts) { joined.set(part, at); at += part.length; }
    return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
  }
  const leafHash = (record) => sha256(Uint8Array.of(0), record);
  const nodeHash = (left, right) => sha256(Uint8Array.of(1), left, right);

  // Returns the root the proof leads to; the caller compares it with the signed root.
  async function rootFromInclusion(leaf, index, size, proof) {
    if (index < 0 || index >= size) throw new Error(`leaf index ${index} outside a tree of ${size}`);
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
      if (sn === 0) throw new Error("proof is longer than the path to the root");
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) { while (fn % 2 === 0 && fn !== 0) { fn >>= 1; sn >>= 1; } }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1; sn >>= 1;
    }
    if (sn !== 0) throw new Error("proof is shorter than the path to the root");
    return r;
  }

  async function verifyInclusion(answer) {
    const record = b64(answer.leaf.record);
    const leaf = await leafHash(record);
    const root = await rootFromInclusion(leaf, answer.leafIndex, answer.treeSize, answer.proof.map(b64));
    const expected = b64(answer.rootHash);
    const ok = hex(root) === hex(expected);
    return { ok, leafHash: hex(leaf), computedRoot: hex(root), signedRoot: hex(expected),
             record: new TextDecoder().decode(record) };
  }

  return { verifyInclusion, rootFromInclusion, leafHash, nodeHash, b64, hex };
})();
