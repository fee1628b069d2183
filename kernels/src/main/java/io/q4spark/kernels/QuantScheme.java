package io.q4spark.kernels;

/** The two kernel families q4spark implements, both after vLLM's mixed-precision kernels. */
public enum QuantScheme {
  /**
   * int4 weights, activations stay floating point (fp16, bf16 or fp32); vLLM's WNA16 kernels such
   * as {@code TritonW4A16LinearKernel}.
   */
  W4A16,
  /**
   * int4 weights, activations quantized per token to symmetric int8 on the fly, exact integer dot
   * products per group; vLLM's {@code XPUW4A8IntLinearKernel}. The GEMM produces fp16.
   */
  W4A8
}
