package io.q4spark.kernels.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A CUDA stream ({@code CUstream}) of a {@link CudaDevice}, created with {@code CU_STREAM_DEFAULT}
 * (it orders with the legacy default stream, so the synchronous copies of {@link DeviceBuffer}
 * never overtake work queued here). Closing destroys it; closing twice does nothing.
 */
public final class CudaStream implements AutoCloseable {
  private final CudaDevice device;
  private final MemorySegment handle;
  private boolean closed;

  CudaStream(CudaDevice device, MemorySegment handle) {
    this.device = device;
    this.handle = handle;
  }

  /** The {@code CUstream}. */
  public MemorySegment handle() {
    checkOpen();
    return handle;
  }

  /** The device this stream belongs to. */
  public CudaDevice device() {
    return device;
  }

  /**
   * {@code cuStreamWaitEvent}: work queued here from now on waits for {@code event}'s latest record
   * (made on another stream of the same device).
   */
  public void waitFor(CudaEvent event) {
    checkOpen();
    device.driver().streamWaitEvent(handle, event.handle());
  }

  /** {@code cuStreamSynchronize}: waits until all work queued on this stream has finished. */
  public void synchronize() {
    checkOpen();
    device.driver().streamSynchronize(handle);
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("stream " + CudaDriver.hex(handle) + " is closed");
    }
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      device.driver().streamDestroy(handle);
    }
  }
}
