package io.q4spark.kernels.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Page-locked host memory from {@code cuMemAllocHost_v2} ({@link CudaDevice#allocatePinned}): the
 * source or target of copies that really run asynchronously. {@link #segment()} is bound to a
 * shared arena that closing closes before the memory is freed, so a use after closing is an {@link
 * IllegalStateException}, not a crash. Closing twice does nothing.
 */
@SuppressWarnings("restricted") // reinterpret gives the driver's pointer its size and lifetime
public final class PinnedBuffer implements AutoCloseable {
  private final CudaDevice device;
  private final MemorySegment raw;
  private final Arena scope;
  private final MemorySegment segment;
  private boolean closed;

  PinnedBuffer(CudaDevice device, MemorySegment raw, long bytes) {
    this.device = device;
    this.raw = raw;
    this.scope = Arena.ofShared();
    this.segment = raw.reinterpret(bytes, scope, null);
  }

  /** The memory, {@link #size()} bytes; invalid once closed. */
  public MemorySegment segment() {
    return segment;
  }

  /** The size in bytes. */
  public long size() {
    return segment.byteSize();
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      scope.close();
      device.driver().memFreeHost(raw);
    }
  }
}
