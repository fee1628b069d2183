package io.q4spark.kernels.format;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.q4spark.kernels.BFloat16;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Builds a safetensors file: tensors are laid out in insertion order, back to back, after a header
 * padded with spaces to a multiple of 8 bytes so the data buffer starts 8-aligned.
 *
 * <p>Arrays passed to {@link #add} are kept, not copied, until {@link #write}: do not modify them
 * in between. {@link #write} goes through a temporary file in the target directory that is renamed
 * into place, so a crash leaves either the old file or the complete new one under the real name.
 */
public final class SafetensorsWriter {
  /** Header padding unit: the reference writer aligns the data buffer to 8 bytes, and so do we. */
  static final int HEADER_ALIGNMENT = 8;

  private static final byte PADDING = ' ';

  private record Pending(SafetensorsDType dtype, long[] shape, byte[] data) {}

  private final Map<String, String> metadata = new LinkedHashMap<>();
  private final Map<String, Pending> tensors = new LinkedHashMap<>();

  /** Names of the tensors added so far, in insertion order. */
  public java.util.List<String> names() {
    return java.util.List.copyOf(tensors.keySet());
  }

  /**
   * Adds a {@code __metadata__} entry.
   *
   * @throws IllegalArgumentException if the key was already added
   */
  public SafetensorsWriter metadata(String key, String value) {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(value, "value");
    if (metadata.containsKey(key)) {
      throw new IllegalArgumentException(
          "metadata key '"
              + key
              + "' added twice: first '"
              + metadata.get(key)
              + "', then '"
              + value
              + "'");
    }
    metadata.put(key, value);
    return this;
  }

  /**
   * Adds a tensor from its raw little-endian, row-major bytes.
   *
   * @throws IllegalArgumentException if the name is taken or reserved, a dimension is negative, or
   *     the byte count is not {@code numel * dtype.byteSize()}
   */
  public SafetensorsWriter add(
      String name, SafetensorsDType dtype, long[] shape, byte[] littleEndianData) {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dtype, "dtype");
    Objects.requireNonNull(littleEndianData, "littleEndianData");
    if (name.equals(SafetensorsHeader.METADATA_KEY)) {
      throw new IllegalArgumentException(
          "tensor name '" + name + "' is reserved for the metadata entry");
    }
    if (tensors.containsKey(name)) {
      throw new IllegalArgumentException("tensor '" + name + "' added twice");
    }
    long needed = Math.multiplyExact(numel(name, shape), dtype.byteSize());
    if (littleEndianData.length != needed) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': dtype "
              + dtype
              + " and shape "
              + Arrays.toString(shape)
              + " need "
              + needed
              + " bytes, but "
              + littleEndianData.length
              + " were given");
    }
    tensors.put(name, new Pending(dtype, shape.clone(), littleEndianData));
    return this;
  }

  /** Adds an {@code I32} tensor. */
  public SafetensorsWriter addInts(String name, long[] shape, int[] values) {
    checkCount(name, shape, values.length);
    byte[] bytes = new byte[Math.multiplyExact(values.length, Integer.BYTES)];
    MemorySegment.copy(values, 0, MemorySegment.ofArray(bytes), LittleEndian.INT, 0, values.length);
    return add(name, SafetensorsDType.I32, shape, bytes);
  }

  /** Adds an {@code I8} tensor. */
  public SafetensorsWriter addBytes(String name, long[] shape, byte[] values) {
    checkCount(name, shape, values.length);
    return add(name, SafetensorsDType.I8, shape, values.clone());
  }

  /** Adds an {@code I64} tensor. */
  public SafetensorsWriter addLongs(String name, long[] shape, long[] values) {
    checkCount(name, shape, values.length);
    byte[] bytes = new byte[Math.multiplyExact(values.length, Long.BYTES)];
    MemorySegment.copy(
        values, 0, MemorySegment.ofArray(bytes), LittleEndian.LONG, 0, values.length);
    return add(name, SafetensorsDType.I64, shape, bytes);
  }

  /** Adds an {@code F64} tensor. */
  public SafetensorsWriter addDoubles(String name, long[] shape, double[] values) {
    checkCount(name, shape, values.length);
    byte[] bytes = new byte[Math.multiplyExact(values.length, Double.BYTES)];
    MemorySegment.copy(
        values, 0, MemorySegment.ofArray(bytes), LittleEndian.DOUBLE, 0, values.length);
    return add(name, SafetensorsDType.F64, shape, bytes);
  }

  /**
   * Adds an {@code F16}, {@code BF16} or {@code F32} tensor. Narrowing rounds to nearest, ties to
   * even ({@link Float#floatToFloat16}, {@link BFloat16#fromFloat}).
   *
   * @throws IllegalArgumentException for any other dtype
   */
  public SafetensorsWriter addFloats(
      String name, SafetensorsDType dtype, long[] shape, float[] values) {
    if (dtype != SafetensorsDType.F16
        && dtype != SafetensorsDType.BF16
        && dtype != SafetensorsDType.F32) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': addFloats writes dtype F16, BF16 or F32, but was asked for "
              + dtype);
    }
    checkCount(name, shape, values.length);
    byte[] bytes = new byte[Math.multiplyExact(values.length, dtype.byteSize())];
    MemorySegment out = MemorySegment.ofArray(bytes);
    switch (dtype) {
      case F32 -> MemorySegment.copy(values, 0, out, LittleEndian.FLOAT, 0, values.length);
      case F16 -> {
        for (int i = 0; i < values.length; i++) {
          out.setAtIndex(LittleEndian.SHORT, i, Float.floatToFloat16(values[i]));
        }
      }
      case BF16 -> {
        for (int i = 0; i < values.length; i++) {
          out.setAtIndex(LittleEndian.SHORT, i, BFloat16.fromFloat(values[i]));
        }
      }
      default -> throw new AssertionError(dtype);
    }
    return add(name, dtype, shape, bytes);
  }

  /**
   * Writes the file, replacing any file at {@code path}.
   *
   * @throws UncheckedIOException naming the path if writing fails; the target is then untouched
   */
  public void write(Path path) {
    byte[] header = header();
    Path target = path.toAbsolutePath();
    Path directory = target.getParent();
    Path temp = null;
    try {
      // Same directory as the target, so the rename cannot cross file systems and stays atomic.
      // The name does not end in .safetensors, so a directory scan never picks up a leftover.
      temp = Files.createTempFile(directory, "." + target.getFileName() + ".", ".tmp");
      try (FileChannel out = FileChannel.open(temp, StandardOpenOption.WRITE)) {
        ByteBuffer length =
            ByteBuffer.allocate(SafetensorsFile.LENGTH_PREFIX_BYTES)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putLong(0, header.length);
        writeFully(out, length);
        writeFully(out, ByteBuffer.wrap(header));
        for (Pending p : tensors.values()) {
          writeFully(out, ByteBuffer.wrap(p.data()));
        }
        // Data must be on disk before the rename publishes it, or a crash could expose a hollow
        // file.
        out.force(true);
      }
      Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      temp = null;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write safetensors file " + path + ": " + e, e);
    } finally {
      if (temp != null) {
        try {
          Files.deleteIfExists(temp);
        } catch (IOException e) {
          // The original failure is what matters; a leftover hidden .tmp file is harmless.
        }
      }
    }
  }

  /** The header JSON, padded with spaces to a multiple of {@link #HEADER_ALIGNMENT} bytes. */
  private byte[] header() {
    ObjectNode root = SafetensorsHeader.STRICT_JSON.createObjectNode();
    if (!metadata.isEmpty()) {
      ObjectNode meta = root.putObject(SafetensorsHeader.METADATA_KEY);
      metadata.forEach(meta::put);
    }
    long offset = 0;
    for (Map.Entry<String, Pending> e : tensors.entrySet()) {
      Pending p = e.getValue();
      ObjectNode entry = root.putObject(e.getKey());
      entry.put(SafetensorsHeader.DTYPE, p.dtype().name());
      ArrayNode shape = entry.putArray(SafetensorsHeader.SHAPE);
      for (long d : p.shape()) {
        shape.add(d);
      }
      long end = offset + p.data().length;
      entry.putArray(SafetensorsHeader.DATA_OFFSETS).add(offset).add(end);
      offset = end;
    }
    byte[] json;
    try {
      json = SafetensorsHeader.STRICT_JSON.writeValueAsBytes(root);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialize a safetensors header: " + e, e);
    }
    int padded = Math.ceilDiv(json.length, HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
    if (padded > SafetensorsFile.MAX_HEADER_BYTES) {
      throw new IllegalStateException(
          "safetensors header of "
              + tensors.size()
              + " tensors is "
              + padded
              + " bytes, more than readers accept ("
              + SafetensorsFile.MAX_HEADER_BYTES
              + ")");
    }
    byte[] header = Arrays.copyOf(json, padded);
    Arrays.fill(header, json.length, padded, PADDING);
    return header;
  }

  private static void writeFully(FileChannel out, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      out.write(buffer);
    }
  }

  private static long numel(String name, long[] shape) {
    Objects.requireNonNull(shape, "shape");
    long numel = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException(
            "tensor '" + name + "': shape " + Arrays.toString(shape) + " has a negative dimension");
      }
      numel = Math.multiplyExact(numel, d);
    }
    return numel;
  }

  private static void checkCount(String name, long[] shape, int count) {
    long numel = numel(name, shape);
    if (numel != count) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': shape "
              + Arrays.toString(shape)
              + " holds "
              + numel
              + " elements, but "
              + count
              + " values were given");
    }
  }
}
