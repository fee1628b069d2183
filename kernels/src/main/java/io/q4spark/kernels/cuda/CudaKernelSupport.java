package io.q4spark.kernels.cuda;

import io.q4spark.kernels.Acceptance;
import io.q4spark.kernels.KernelCapabilities;
import io.q4spark.kernels.LinearLayerConfig;

/**
 * The checks both CUDA kernels make before their whitelist: a usable device (driver, NVRTC) of
 * compute capability 8.0 or newer, probed once per process.
 */
final class CudaKernelSupport {
  private CudaKernelSupport() {}

  /** bf16 mma, cp.async and cvt.rn.bf16 need Ampere (sm_80) or newer. */
  static final int MIN_COMPUTE_CAPABILITY = 80;

  private static volatile CudaProbe probe;

  /** The process's probe of the default device (libraries from the environment), cached. */
  static CudaProbe probe() {
    CudaProbe p = probe;
    if (p == null) {
      p = CudaDevice.probe(CudaOptions.defaults());
      probe = p;
    }
    return p;
  }

  /**
   * A CUDA kernel's {@code canImplement}: its whitelist first (so a layer no GPU could run gets the
   * same reason on every machine), then whole mma k steps per group, then a usable device.
   */
  static Acceptance canImplement(
      String kernel, KernelCapabilities capabilities, LinearLayerConfig config, int mmaK) {
    Acceptance a = capabilities.check(kernel, config);
    if (!a.accepted()) {
      return a;
    }
    Acceptance step = checkGroupStep(kernel, config, mmaK);
    if (step != null) {
      return step;
    }
    Acceptance device = checkDevice(kernel);
    return device != null ? device : Acceptance.accept();
  }

  /** Rejects when there is no usable device, else null. */
  static Acceptance checkDevice(String kernel) {
    CudaProbe p = probe();
    if (!p.available()) {
      return Acceptance.reject(kernel + " needs a CUDA GPU: " + p.reason());
    }
    if (p.computeCapability() < MIN_COMPUTE_CAPABILITY) {
      return Acceptance.reject(
          kernel
              + " needs compute capability 8.0 or newer (bf16 mma, cp.async), but "
              + p.reason());
    }
    return null;
  }

  /** Rejects a group size that is not a whole number of the kernel's k steps, else null. */
  static Acceptance checkGroupStep(String kernel, LinearLayerConfig c, int kStep) {
    int g = c.effectiveGroupSize();
    if (g % kStep != 0) {
      return Acceptance.reject(
          kernel
              + " needs the group size to be a multiple of "
              + kStep
              + " (one mma k step never spans two groups), but it is "
              + g);
    }
    return null;
  }
}
