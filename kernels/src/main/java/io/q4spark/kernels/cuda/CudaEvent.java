package io.q4spark.kernels.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A CUDA event ({@code CUevent}, {@code CU_EVENT_DEFAULT}: timing enabled) of a {@link CudaDevice},
 * for timing work on a stream: record a start and an end, synchronize on the end, then {@link
 * #elapsedMillis}. Closing destroys it; closing twice does nothing.
 */
public final class CudaEvent implements AutoCloseable {
  private final CudaDevice device;
  private final MemorySegment handle;
  private boolean closed;

  CudaEvent(CudaDevice device, MemorySegment handle) {
    this.device = device;
    this.handle = handle;
  }

  /** The {@code CUevent}. */
  public MemorySegment handle() {
    checkOpen();
    return handle;
  }

  /**
   * {@code cuEventRecord}: the event completes when the work queued on {@code stream} so far has.
   */
  public void record(CudaStream stream) {
    checkOpen();
    device.driver().eventRecord(handle, stream.handle());
  }

  /** {@code cuEventSynchronize}: waits until the event has completed. */
  public void synchronize() {
    checkOpen();
    device.driver().eventSynchronize(handle);
  }

  /**
   * {@code cuEventElapsedTime}: milliseconds from {@code start} to {@code end}, both recorded and
   * {@code end} completed (resolution about half a microsecond).
   */
  public static float elapsedMillis(CudaEvent start, CudaEvent end) {
    return start.device.driver().eventElapsedTime(start.handle(), end.handle());
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("event " + CudaDriver.hex(handle) + " is closed");
    }
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      device.driver().eventDestroy(handle);
    }
  }
}
