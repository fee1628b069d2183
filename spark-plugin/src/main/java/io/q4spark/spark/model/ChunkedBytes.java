package io.q4spark.spark.model;

import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Bytes held as a list of arrays of at most {@code chunkBytes} each, so a model of more than 2 GiB
 * (a Java array's limit) serialises and broadcasts. Written and read through typed little-endian
 * calls; arrays are copied in bulk through {@link ByteBuffer} views, not element by element.
 */
public final class ChunkedBytes implements Serializable {
  private static final long serialVersionUID = 1L;

  private final byte[][] chunks;

  private ChunkedBytes(byte[][] chunks) {
    this.chunks = chunks;
  }

  /** The chunks (shared, not copied). */
  public byte[][] chunks() {
    return chunks;
  }

  /** Total bytes. */
  public long size() {
    long n = 0;
    for (byte[] c : chunks) {
      n += c.length;
    }
    return n;
  }

  public Reader reader() {
    return new Reader(chunks);
  }

  /** Appends values to chunks of at most {@code chunkBytes} bytes. */
  public static final class Writer {
    private final int chunkBytes;
    private final List<byte[]> done = new ArrayList<>();
    private ByteBuffer current;

    public Writer(int chunkBytes) {
      if (chunkBytes < Long.BYTES) {
        throw new IllegalArgumentException(
            "chunks must hold at least " + Long.BYTES + " bytes, but chunkBytes was " + chunkBytes);
      }
      this.chunkBytes = chunkBytes;
    }

    /** Room for {@code bytes} contiguous bytes (a scalar never straddles two chunks). */
    private ByteBuffer room(int bytes) {
      if (current == null || current.remaining() < bytes) {
        flush();
        current = ByteBuffer.allocate(chunkBytes).order(ByteOrder.LITTLE_ENDIAN);
      }
      return current;
    }

    private void flush() {
      if (current != null && current.position() > 0) {
        // A full chunk is kept as is; only a partly filled one is trimmed (copied).
        done.add(
            current.position() == chunkBytes
                ? current.array()
                : Arrays.copyOf(current.array(), current.position()));
      }
      current = null;
    }

    public Writer writeInt(int v) {
      room(Integer.BYTES).putInt(v);
      return this;
    }

    public Writer writeBoolean(boolean v) {
      room(1).put((byte) (v ? 1 : 0));
      return this;
    }

    public Writer writeString(String s) {
      byte[] b = s.getBytes(StandardCharsets.UTF_8);
      writeInt(b.length);
      for (int off = 0; off < b.length; ) {
        ByteBuffer buf = room(1);
        int n = Math.min(buf.remaining(), b.length - off);
        buf.put(b, off, n);
        off += n;
      }
      return this;
    }

    /** Writes the length, then the values. */
    public Writer writeInts(int[] v) {
      writeInt(v.length);
      for (int off = 0; off < v.length; ) {
        ByteBuffer buf = room(Integer.BYTES);
        int n = Math.min(buf.remaining() / Integer.BYTES, v.length - off);
        buf.asIntBuffer().put(v, off, n);
        buf.position(buf.position() + n * Integer.BYTES);
        off += n;
      }
      return this;
    }

    /** Writes the length, then the values. */
    public Writer writeFloats(float[] v) {
      writeInt(v.length);
      for (int off = 0; off < v.length; ) {
        ByteBuffer buf = room(Float.BYTES);
        int n = Math.min(buf.remaining() / Float.BYTES, v.length - off);
        buf.asFloatBuffer().put(v, off, n);
        buf.position(buf.position() + n * Float.BYTES);
        off += n;
      }
      return this;
    }

    public ChunkedBytes finish() {
      flush();
      return new ChunkedBytes(done.toArray(new byte[0][]));
    }
  }

  /** Reads back what a {@link Writer} wrote, in the same order. */
  public static final class Reader {
    private final byte[][] chunks;
    private int index = -1;
    private ByteBuffer current;

    private Reader(byte[][] chunks) {
      this.chunks = chunks;
    }

    /** The chunk holding the next {@code bytes} bytes (a writer never splits a value). */
    private ByteBuffer data(int bytes) {
      while (current == null || !current.hasRemaining()) {
        index++;
        if (index >= chunks.length) {
          throw new IllegalStateException(
              "corrupt model bytes: read past the end of " + chunks.length + " chunks");
        }
        current = ByteBuffer.wrap(chunks[index]).order(ByteOrder.LITTLE_ENDIAN);
      }
      if (current.remaining() < bytes) {
        throw new IllegalStateException(
            "corrupt model bytes: a " + bytes + "-byte value straddles the end of chunk " + index);
      }
      return current;
    }

    public int readInt() {
      return data(Integer.BYTES).getInt();
    }

    public boolean readBoolean() {
      return data(1).get() != 0;
    }

    public String readString() {
      byte[] b = new byte[readInt()];
      for (int off = 0; off < b.length; ) {
        ByteBuffer buf = data(1);
        int n = Math.min(buf.remaining(), b.length - off);
        buf.get(b, off, n);
        off += n;
      }
      return new String(b, StandardCharsets.UTF_8);
    }

    public int[] readInts() {
      int[] v = new int[readInt()];
      for (int off = 0; off < v.length; ) {
        ByteBuffer buf = data(Integer.BYTES);
        int n = Math.min(buf.remaining() / Integer.BYTES, v.length - off);
        buf.asIntBuffer().get(v, off, n);
        buf.position(buf.position() + n * Integer.BYTES);
        off += n;
      }
      return v;
    }

    public float[] readFloats() {
      float[] v = new float[readInt()];
      for (int off = 0; off < v.length; ) {
        ByteBuffer buf = data(Float.BYTES);
        int n = Math.min(buf.remaining() / Float.BYTES, v.length - off);
        buf.asFloatBuffer().get(v, off, n);
        buf.position(buf.position() + n * Float.BYTES);
        off += n;
      }
      return v;
    }
  }
}
