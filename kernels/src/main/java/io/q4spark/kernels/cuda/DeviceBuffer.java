package io.q4spark.kernels.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Device memory from {@code cuMemAlloc_v2} ({@link CudaDevice#allocate}), with copies to and from
 * host segments, bounds-checked against both sizes. The device counts its live bytes ({@link
 * CudaDevice#liveBytes()}), so a buffer that is never closed shows as a leak. Closing frees it;
 * closing twice does nothing; any other use after closing is an {@link IllegalStateException}.
 *
 * <p>Host memory: a synchronous copy accepts any segment (a heap segment is staged through native
 * memory). An asynchronous copy needs a native segment that stays alive until the stream is
 * synchronized; use a {@link PinnedBuffer} for copies that really overlap, since the driver copies
 * pageable memory synchronously.
 */
public final class DeviceBuffer implements AutoCloseable {
  private final CudaDevice device;
  private final long address;
  private final long size;
  private boolean closed;

  DeviceBuffer(CudaDevice device, long address, long size) {
    this.device = device;
    this.address = address;
    this.size = size;
  }

  /** The {@code CUdeviceptr}, for kernel arguments. */
  public long address() {
    checkOpen();
    return address;
  }

  /** The size in bytes. */
  public long size() {
    return size;
  }

  /** The device the memory lives on. */
  public CudaDevice device() {
    return device;
  }

  /** Copies all of {@code host} to the start of this buffer, synchronously. */
  public void copyFrom(MemorySegment host) {
    copyFrom(host, 0);
  }

  /** Copies all of {@code host} to {@code dstOffset} of this buffer, synchronously. */
  public void copyFrom(MemorySegment host, long dstOffset) {
    long bytes = host.byteSize();
    check("copyFrom", dstOffset, bytes);
    if (host.isNative()) {
      device.driver().memcpyHtoD(address + dstOffset, host, bytes);
    } else {
      try (Arena staging = Arena.ofConfined()) {
        MemorySegment copy = staging.allocate(bytes);
        copy.copyFrom(host);
        device.driver().memcpyHtoD(address + dstOffset, copy, bytes);
      }
    }
  }

  /**
   * Queues a copy of all of {@code host} (native) to the start of this buffer on {@code stream}.
   */
  public void copyFrom(MemorySegment host, CudaStream stream) {
    copyFrom(host, 0, stream);
  }

  /** Queues a copy of all of {@code host} (native) to {@code dstOffset} on {@code stream}. */
  public void copyFrom(MemorySegment host, long dstOffset, CudaStream stream) {
    long bytes = host.byteSize();
    check("copyFrom", dstOffset, bytes);
    requireNative(host, "copyFrom");
    device.driver().memcpyHtoDAsync(address + dstOffset, host, bytes, stream.handle());
  }

  /**
   * Copies the first {@code host.byteSize()} bytes of this buffer into {@code host}, synchronously.
   */
  public void copyTo(MemorySegment host) {
    copyTo(host, 0);
  }

  /**
   * Copies {@code host.byteSize()} bytes from {@code srcOffset} into {@code host}, synchronously.
   */
  public void copyTo(MemorySegment host, long srcOffset) {
    long bytes = host.byteSize();
    check("copyTo", srcOffset, bytes);
    if (host.isNative()) {
      device.driver().memcpyDtoH(host, address + srcOffset, bytes);
    } else {
      try (Arena staging = Arena.ofConfined()) {
        MemorySegment copy = staging.allocate(bytes);
        device.driver().memcpyDtoH(copy, address + srcOffset, bytes);
        host.copyFrom(copy);
      }
    }
  }

  /**
   * Queues a copy of the first {@code host.byteSize()} bytes into {@code host} on {@code stream}.
   */
  public void copyTo(MemorySegment host, CudaStream stream) {
    copyTo(host, 0, stream);
  }

  /** Queues a copy of {@code host.byteSize()} bytes from {@code srcOffset} on {@code stream}. */
  public void copyTo(MemorySegment host, long srcOffset, CudaStream stream) {
    long bytes = host.byteSize();
    check("copyTo", srcOffset, bytes);
    requireNative(host, "copyTo");
    device.driver().memcpyDtoHAsync(host, address + srcOffset, bytes, stream.handle());
  }

  /**
   * Copies all of {@code source} (same device) to the start of this buffer ({@code cuMemcpyDtoD}).
   */
  public void copyFrom(DeviceBuffer source) {
    check("copyFrom(device)", 0, source.size());
    device.driver().memcpyDtoD(address, source.address(), source.size());
  }

  /** Sets every byte to {@code value}, synchronously. */
  public void fill(byte value) {
    checkOpen();
    device.driver().memsetD8(address, value, size);
  }

  /** Queues setting every byte to {@code value} on {@code stream}. */
  public void fill(byte value, CudaStream stream) {
    checkOpen();
    device.driver().memsetD8Async(address, value, size, stream.handle());
  }

  private void check(String op, long offset, long bytes) {
    checkOpen();
    if (offset < 0 || bytes < 0 || offset > size - bytes) {
      throw new IndexOutOfBoundsException(
          op
              + ": "
              + bytes
              + " bytes at offset "
              + offset
              + " do not fit a device buffer of "
              + size
              + " bytes; expected offset + bytes <= "
              + size);
    }
  }

  private static void requireNative(MemorySegment host, String op) {
    if (!host.isNative()) {
      throw new IllegalArgumentException(
          op
              + " on a stream needs a native host segment (a PinnedBuffer or an Arena's), but was a"
              + " heap segment of "
              + host.byteSize()
              + " bytes; use the synchronous "
              + op
              + " for heap memory");
    }
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException(
          "device buffer " + CudaDriver.hex(address) + " of " + size + " bytes is closed");
    }
  }

  /** Whether {@link #close()} was called. */
  public synchronized boolean isClosed() {
    return closed;
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      try {
        device.driver().memFree(address);
      } finally {
        device.released(size);
      }
    }
  }
}
