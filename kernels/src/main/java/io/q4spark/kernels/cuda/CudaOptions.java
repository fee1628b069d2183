package io.q4spark.kernels.cuda;

import java.nio.file.Path;

/**
 * Plain options for the CUDA runtime layer; {@code kernels} never reads Spark configuration, the
 * plugin maps its keys onto this record.
 *
 * @param driverLibrary explicit path of the driver library ({@code libcuda.so.1}), or null to
 *     search (see {@link CudaLibraries})
 * @param nvrtcLibrary explicit path of NVRTC ({@code libnvrtc.so.13}), or null to search
 * @param cublasLibrary explicit path of cuBLAS ({@code libcublas.so.13}), or null to search
 * @param deviceOrdinal which device to open, 0 for the first
 * @param cacheDir where compiled CUBINs are cached on disk, or null for {@link #defaultCacheDir()}
 */
public record CudaOptions(
    Path driverLibrary, Path nvrtcLibrary, Path cublasLibrary, int deviceOrdinal, Path cacheDir) {
  /** Name of the default cache directory under {@code java.io.tmpdir}. */
  public static final String DEFAULT_CACHE_DIR_NAME = "q4spark-cubin-cache";

  public CudaOptions {
    if (deviceOrdinal < 0) {
      throw new IllegalArgumentException(
          "deviceOrdinal should be at least 0, but was " + deviceOrdinal);
    }
  }

  /** Every library searched for, device 0, the default cache directory. */
  public static CudaOptions defaults() {
    return new CudaOptions(null, null, null, 0, null);
  }

  /** The same options for device {@code ordinal}. */
  public CudaOptions withDeviceOrdinal(int ordinal) {
    return new CudaOptions(driverLibrary, nvrtcLibrary, cublasLibrary, ordinal, cacheDir);
  }

  /** The same options with CUBINs cached under {@code dir} (null for the default). */
  public CudaOptions withCacheDir(Path dir) {
    return new CudaOptions(driverLibrary, nvrtcLibrary, cublasLibrary, deviceOrdinal, dir);
  }

  /** The same options with explicit library paths (each null to search). */
  public CudaOptions withLibraries(Path driver, Path nvrtc, Path cublas) {
    return new CudaOptions(driver, nvrtc, cublas, deviceOrdinal, cacheDir);
  }

  /** {@link #cacheDir()}, or {@code ${java.io.tmpdir}/q4spark-cubin-cache} when it is null. */
  public Path effectiveCacheDir() {
    return cacheDir != null ? cacheDir : defaultCacheDir();
  }

  /** {@code ${java.io.tmpdir}/q4spark-cubin-cache}. */
  public static Path defaultCacheDir() {
    return Path.of(System.getProperty("java.io.tmpdir"), DEFAULT_CACHE_DIR_NAME);
  }
}
