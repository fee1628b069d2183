package io.q4spark.kernels.cuda;

/**
 * A CUDA driver, NVRTC or cuBLAS call failed, or the CUDA runtime layer cannot start. The message
 * names the call, its key arguments and the library's status name, e.g. {@code
 * cuMemAlloc_v2(bytes=1024) failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory}.
 */
public class CudaException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** Status used when the failure has no library status (a missing library, a bad argument). */
  public static final int NO_STATUS = -1;

  private final int status;
  private final String statusName;

  /** A failure with no library status, e.g. a library that could not be found. */
  public CudaException(String message) {
    this(message, NO_STATUS, null, null);
  }

  /** A failure with no library status, caused by {@code cause}. */
  public CudaException(String message, Throwable cause) {
    this(message, NO_STATUS, null, cause);
  }

  /**
   * A call that returned {@code status}, whose name is {@code statusName} (e.g. {@code
   * CUDA_ERROR_OUT_OF_MEMORY}); {@code message} already names both.
   */
  public CudaException(String message, int status, String statusName, Throwable cause) {
    super(message, cause);
    this.status = status;
    this.statusName = statusName;
  }

  /** The library's status code, or {@link #NO_STATUS}. */
  public int status() {
    return status;
  }

  /** The library's name for {@link #status()}, or null when there is none. */
  public String statusName() {
    return statusName;
  }
}
