package io.q4spark.kernels.cuda;

/**
 * A device or pinned allocation failed with {@code CUDA_ERROR_OUT_OF_MEMORY}: carries the bytes
 * asked for and the device's free and total bytes at the time (from {@code cuMemGetInfo_v2}; -1
 * where that call failed too), so a caller can retry with a smaller batch.
 */
public final class CudaOutOfMemoryException extends CudaException {
  private static final long serialVersionUID = 1L;

  private final long requestedBytes;
  private final long freeBytes;
  private final long totalBytes;

  CudaOutOfMemoryException(
      String call, int status, long requestedBytes, long freeBytes, long totalBytes) {
    super(
        call
            + " failed: CUDA_ERROR_OUT_OF_MEMORY ("
            + status
            + "): requested "
            + requestedBytes
            + " bytes, but the device has "
            + (freeBytes < 0 ? "an unknown number of" : String.valueOf(freeBytes))
            + " bytes free of "
            + (totalBytes < 0 ? "an unknown total" : String.valueOf(totalBytes))
            + "; retry with a smaller batch or free device memory",
        status,
        "CUDA_ERROR_OUT_OF_MEMORY",
        null);
    this.requestedBytes = requestedBytes;
    this.freeBytes = freeBytes;
    this.totalBytes = totalBytes;
  }

  /** The bytes the failed allocation asked for. */
  public long requestedBytes() {
    return requestedBytes;
  }

  /** The device's free bytes right after the failure, or -1 if unknown. */
  public long freeBytes() {
    return freeBytes;
  }

  /** The device's total bytes, or -1 if unknown. */
  public long totalBytes() {
    return totalBytes;
  }
}
