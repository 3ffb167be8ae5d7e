// The messages of the comparison, as common/src/lib.rs makes them for the Rust programs: the
// nth text message is n in decimal, left-padded with "0" to its size; the nth binary message a
// fixed pattern with n in its first four bytes (little-endian). `same` compares two byte
// arrays, four bytes at a time.

export const text = (n, size) => String(n).padStart(size, "0");
export const pattern = (size) => Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) & 255);
export function binary(pattern, n) {
  const message = pattern.slice();
  new DataView(message.buffer).setUint32(0, n, true);
  return message;
}
export function same(a, b) {
  if (a.byteLength !== b.byteLength) return false;
  const [x, y] = [new Int32Array(a.buffer, 0, a.byteLength >> 2), new Int32Array(b.buffer, 0, b.byteLength >> 2)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  for (let i = x.length << 2; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
