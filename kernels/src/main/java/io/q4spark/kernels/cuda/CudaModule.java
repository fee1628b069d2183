package io.q4spark.kernels.cuda;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * A loaded CUBIN ({@code CUmodule}), from {@link CudaDevice#compile}; {@link #function} finds its
 * kernels. Closing unloads it, after which its functions must not be launched; closing twice does
 * nothing.
 */
public final class CudaModule implements AutoCloseable {
  private final CudaDevice device;
  private final MemorySegment handle;
  private final String programName;
  private final List<String> options;
  private volatile boolean closed;

  CudaModule(CudaDevice device, MemorySegment handle, String programName, List<String> options) {
    this.device = device;
    this.handle = handle;
    this.programName = programName;
    this.options = List.copyOf(options);
  }

  /** The kernel {@code name}, which the source declares {@code extern "C" __global__}. */
  public CudaFunction function(String name) {
    checkOpen();
    return new CudaFunction(
        this, device.driver().moduleGetFunction(handle, name, programName), name);
  }

  /** The name the program was compiled under. */
  public String programName() {
    return programName;
  }

  /** The NVRTC options it was compiled with. */
  public List<String> options() {
    return options;
  }

  CudaDevice device() {
    return device;
  }

  void checkOpen() {
    if (closed) {
      throw new IllegalStateException("module " + programName + " is unloaded");
    }
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      device.driver().moduleUnload(handle);
    }
  }
}
