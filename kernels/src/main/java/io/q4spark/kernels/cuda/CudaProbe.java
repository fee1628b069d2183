package io.q4spark.kernels.cuda;

/**
 * Whether a CUDA device can be used, and why not: what {@link CudaDevice#probe} found, for kernel
 * selection and {@code q4spark doctor}.
 *
 * @param available whether the driver, the device and NVRTC are all usable
 * @param reason one line: e.g. {@code device 0: NVIDIA H100 80GB HBM3, sm_90, NVRTC 13.0}, or why
 *     not, e.g. {@code libcuda not found: tried …} or {@code cuInit failed: CUDA_ERROR_NO_DEVICE}
 * @param deviceName the device's name, or null
 * @param computeCapability {@code 10 * major + minor}, e.g. 90, or 0 when unknown
 * @param driverLibrary where the driver was loaded from, or null
 * @param nvrtcLibrary where NVRTC was loaded from, or null
 */
public record CudaProbe(
    boolean available,
    String reason,
    String deviceName,
    int computeCapability,
    String driverLibrary,
    String nvrtcLibrary) {

  static CudaProbe unavailable(String reason, String driverLibrary, String nvrtcLibrary) {
    return new CudaProbe(false, reason, null, 0, driverLibrary, nvrtcLibrary);
  }
}
