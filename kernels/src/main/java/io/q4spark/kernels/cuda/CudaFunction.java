package io.q4spark.kernels.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A kernel ({@code CUfunction}) of a {@link CudaModule}: launches, its dynamic shared memory limit
 * and its occupancy. Valid while its module is loaded.
 */
public final class CudaFunction {
  private final CudaModule module;
  private final MemorySegment handle;
  private final String name;

  CudaFunction(CudaModule module, MemorySegment handle, String name) {
    this.module = module;
    this.handle = handle;
    this.name = name;
  }

  /** The kernel's name. */
  public String name() {
    return name;
  }

  /** The {@code CUfunction}. */
  public MemorySegment handle() {
    return handle;
  }

  /**
   * {@code cuLaunchKernel}: queues the kernel on {@code stream} with {@code sharedBytes} of dynamic
   * shared memory (above 48 KiB only after {@link #setMaxDynamicSharedMemory}). The arguments must
   * match the kernel's parameters in order and type; the driver cannot check them.
   */
  public void launch(Dim3 grid, Dim3 block, int sharedBytes, CudaStream stream, KernelArgs args) {
    module.checkOpen();
    if (sharedBytes < 0) {
      throw new IllegalArgumentException(
          "kernel " + name + ": sharedBytes should be at least 0, but was " + sharedBytes);
    }
    module
        .device()
        .driver()
        .launchKernel(
            handle,
            grid,
            block,
            sharedBytes,
            stream.handle(),
            args.pointers(),
            () -> what() + " args=" + args);
  }

  /**
   * {@code cuFuncSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)}: lets launches use
   * up to {@code bytes} of dynamic shared memory (at most {@link
   * CudaDevice#maxSharedMemoryPerBlockOptin()} minus the kernel's static shared memory).
   */
  public void setMaxDynamicSharedMemory(int bytes) {
    module.checkOpen();
    module
        .device()
        .driver()
        .funcSetAttribute(
            handle, CudaDriver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes, what());
  }

  /** {@code cuFuncGetAttribute} of a {@code CU_FUNC_ATTRIBUTE_*}. */
  public int attribute(int attribute) {
    module.checkOpen();
    return module.device().driver().funcGetAttribute(handle, attribute, what());
  }

  /**
   * {@code cuOccupancyMaxActiveBlocksPerMultiprocessor} for blocks of {@code blockSize} threads.
   */
  public int maxActiveBlocksPerSm(int blockSize, int sharedBytes) {
    module.checkOpen();
    return module
        .device()
        .driver()
        .occupancyMaxActiveBlocksPerMultiprocessor(handle, blockSize, sharedBytes, what());
  }

  private String what() {
    return module.programName() + ":" + name;
  }
}
