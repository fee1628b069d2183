package io.q4spark.kernels.format;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * One safetensors file, memory-mapped read-only. {@link #open} validates the whole header (see
 * {@link SafetensorsHeader} for the layout) and throws {@link SafetensorsException} for any
 * malformed file, so every {@link TensorView} it hands out is consistent. Tensor data is never
 * copied: views are slices of the mapping, which lives until {@link #close()}.
 *
 * <p>Thread-safe once opened. The file must not be truncated while open: the OS would fault on
 * access to the vanished pages.
 */
public final class SafetensorsFile implements TensorSource {
  /**
   * Largest header accepted, in bytes. The reference implementation uses the same bound (100 MB),
   * so both accept the same files; it stops a corrupt length from making a reader allocate
   * gigabytes.
   */
  public static final long MAX_HEADER_BYTES = 100_000_000L;

  /** The u64 header length that opens every file. */
  static final int LENGTH_PREFIX_BYTES = Long.BYTES;

  private static final ValueLayout.OfLong U64_LE =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final Path path;
  private final Arena arena;
  private final Map<String, TensorView> tensors;
  private final Map<String, String> metadata;
  private boolean closed;

  private SafetensorsFile(
      Path path, Arena arena, Map<String, TensorView> tensors, Map<String, String> metadata) {
    this.path = path;
    this.arena = arena;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  /**
   * Maps and validates a file.
   *
   * @throws SafetensorsException naming the file and the problem if it cannot be read or breaks the
   *     format
   */
  public static SafetensorsFile open(Path path) {
    Objects.requireNonNull(path, "path");
    String source = path.toString();
    // Shared, so views can be read from any thread (Spark tasks); closed by close() or on failure.
    Arena arena = Arena.ofShared();
    try {
      MemorySegment file;
      try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
        long size = channel.size();
        if (size < LENGTH_PREFIX_BYTES) {
          throw new SafetensorsException(
              source
                  + ": file is "
                  + size
                  + " bytes, too short for the "
                  + LENGTH_PREFIX_BYTES
                  + "-byte header length");
        }
        // The mapping outlives the channel; it is released when the arena closes.
        file = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
      } catch (IOException e) {
        throw new SafetensorsException("cannot read " + source + ": " + e, e);
      }
      return fromMapping(path, source, arena, file);
    } catch (RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  private static SafetensorsFile fromMapping(
      Path path, String source, Arena arena, MemorySegment file) {
    long following = file.byteSize() - LENGTH_PREFIX_BYTES;
    long headerBytes = file.get(U64_LE, 0);
    // Compare unsigned: the field is a u64, and values >= 2^63 read as negative longs.
    if (Long.compareUnsigned(headerBytes, following) > 0) {
      throw new SafetensorsException(
          source
              + ": header length "
              + Long.toUnsignedString(headerBytes)
              + " exceeds the file: only "
              + following
              + " bytes follow the "
              + LENGTH_PREFIX_BYTES
              + "-byte length");
    }
    if (headerBytes > MAX_HEADER_BYTES) {
      throw new SafetensorsException(
          source
              + ": header length "
              + headerBytes
              + " exceeds the limit of "
              + MAX_HEADER_BYTES
              + " bytes");
    }
    byte[] header = file.asSlice(LENGTH_PREFIX_BYTES, headerBytes).toArray(ValueLayout.JAVA_BYTE);
    long dataStart = LENGTH_PREFIX_BYTES + headerBytes;
    long dataBytes = file.byteSize() - dataStart;
    SafetensorsHeader.Parsed parsed = SafetensorsHeader.parse(source, header, dataBytes);

    Map<String, TensorView> tensors = new TreeMap<>();
    for (SafetensorsHeader.Entry e : parsed.tensors()) {
      MemorySegment data = file.asSlice(dataStart + e.begin(), e.end() - e.begin());
      tensors.put(
          e.name(), new TensorView(e.name(), e.dtype(), e.shape(), e.numel(), data, source));
    }
    return new SafetensorsFile(
        path, arena, Collections.unmodifiableMap(tensors), parsed.metadata());
  }

  public Path path() {
    return path;
  }

  /** The {@code __metadata__} entries in header order; empty if the header has none. */
  public Map<String, String> metadata() {
    return metadata;
  }

  @Override
  public boolean contains(String name) {
    return tensors.containsKey(name);
  }

  @Override
  public TensorView tensor(String name) {
    TensorView view = tensors.get(name);
    if (view == null) {
      throw new SafetensorsException(
          "no tensor '" + name + "' in " + path + " (it holds " + tensors.size() + " tensors)");
    }
    synchronized (this) {
      if (closed) {
        throw new IllegalStateException(path + " is closed; tensor '" + name + "' is unavailable");
      }
    }
    return view;
  }

  @Override
  public Set<String> names() {
    return tensors.keySet();
  }

  @Override
  public String describe() {
    return path.toString();
  }

  /** Unmaps the file; calling it again does nothing. */
  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      arena.close();
    }
  }

  @Override
  public String toString() {
    return "SafetensorsFile[" + path + ", " + tensors.size() + " tensors]";
  }
}
