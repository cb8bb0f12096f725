/** Binary values as the driver returns them (bson `Binary`), as bytes. */
import type { Binary } from 'mongodb';

/** The bytes of a stored binary value (a `Binary`, or bytes when the driver promotes buffers), no copy. */
export function bytesOf(data: Binary | Uint8Array): Uint8Array {
  const bytes = data instanceof Uint8Array ? data : data.buffer.subarray(0, data.position);
  // a plain Uint8Array view (the driver hands out Buffers), like the other backends' bytes
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
