package io.q4spark.jobs.bench;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The protocol-buffer wire encoding, as much of it as an ONNX model needs: varint fields (wire type
 * 0) and length-delimited fields (wire type 2: strings, bytes and nested messages).
 *
 * <pre>
 *   field   = key payload
 *   key     = varint(field_number &lt;&lt; 3 | wire_type)
 *   varint  = 7 bits per byte, least significant group first, high bit set on all but the last
 *   type 0  payload = varint(value)              (int64 as two's complement: 10 bytes if negative)
 *   type 2  payload = varint(length) bytes
 * </pre>
 *
 * A message is kept as a list of chunks: large byte arrays (tensor data) and nested messages are
 * referenced, not copied, so a model with a 235 MB initializer is copied once, into the final
 * array.
 */
final class ProtoWriter {
  private static final int WIRE_VARINT = 0;
  private static final int WIRE_LEN = 2;

  /** Byte arrays at least this long are referenced instead of copied into the pending buffer. */
  private static final int REFERENCE_AT = 4096;

  private final List<byte[]> chunks = new ArrayList<>();
  private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
  private long chunkBytes;

  /** A varint field: int32, int64, enum or bool. */
  ProtoWriter varint(int field, long value) {
    key(field, WIRE_VARINT);
    rawVarint(value);
    return this;
  }

  /** A string field, UTF-8. */
  ProtoWriter string(int field, String value) {
    return bytes(field, value.getBytes(StandardCharsets.UTF_8));
  }

  /** A bytes field; the array is referenced, so the caller must not change it afterwards. */
  ProtoWriter bytes(int field, byte[] value) {
    key(field, WIRE_LEN);
    rawVarint(value.length);
    append(value);
    return this;
  }

  /** An embedded message. */
  ProtoWriter message(int field, ProtoWriter message) {
    key(field, WIRE_LEN);
    rawVarint(message.size());
    message.flush();
    for (byte[] chunk : message.chunks) {
      append(chunk);
    }
    return this;
  }

  /** Encoded size in bytes. */
  long size() {
    return chunkBytes + pending.size();
  }

  /** The encoded message. */
  byte[] toByteArray() {
    long size = size();
    if (size > Integer.MAX_VALUE - 8) {
      throw new IllegalStateException(
          "message of " + size + " bytes is over the 2 GiB limit of protocol buffers");
    }
    flush();
    byte[] out = new byte[(int) size];
    int at = 0;
    for (byte[] chunk : chunks) {
      System.arraycopy(chunk, 0, out, at, chunk.length);
      at += chunk.length;
    }
    return out;
  }

  /** Writes the encoded message to {@code out}. */
  void writeTo(OutputStream out) {
    flush();
    try {
      for (byte[] chunk : chunks) {
        out.write(chunk);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void key(int field, int wireType) {
    if (field < 1 || field > (1 << 29) - 1) {
      throw new IllegalArgumentException("field number must be 1..2^29-1, but was " + field);
    }
    rawVarint((long) field << 3 | wireType);
  }

  private void rawVarint(long value) {
    long v = value;
    while ((v & ~0x7FL) != 0) {
      pending.write((int) (v & 0x7F) | 0x80);
      v >>>= 7;
    }
    pending.write((int) v);
  }

  private void append(byte[] data) {
    if (data.length < REFERENCE_AT) {
      pending.write(data, 0, data.length);
    } else {
      flush();
      chunks.add(data);
      chunkBytes += data.length;
    }
  }

  private void flush() {
    if (pending.size() > 0) {
      byte[] p = pending.toByteArray();
      chunks.add(p);
      chunkBytes += p.length;
      pending.reset();
    }
  }
}
