package io.q4spark.jobs.bench;

import java.util.function.Supplier;

/**
 * One timed implementation in one benchmark row: {@link #call} runs the layer once on a fixed input
 * into a preallocated output. In cold mode each call moves on to the next copy of the weights, so
 * consecutive calls do not find their weights in cache. The weights, sessions and buffers belong to
 * the shape's setup, which closes them; a backend is only a view.
 *
 * @param id stable identifier for the JSON report: {@code q4spark}, {@code ort-matmulnbits-acc4},
 *     {@code ort-matmulnbits-acc0} or {@code ort-matmul-fp32}
 * @param label short label for the table
 * @param kernel our kernel's name, or null for a peer
 * @param act activation dtype of the call, e.g. {@code float32}
 * @param scheme W4A16 or W4A8 for our kernels and MatMulNBits, fp32 for dense
 * @param weightBytes bytes of weights and scales one call reads from one copy
 * @param copies how many weight copies the calls rotate over (1 when hot)
 * @param call one call
 * @param output a copy of the output of the last call, [M, N] row-major
 */
record Backend(
    String id,
    String label,
    String kernel,
    String act,
    String scheme,
    long weightBytes,
    int copies,
    Call call,
    Supplier<float[]> output) {
  static final String ORT_ACC4 = "ort-matmulnbits-acc4";
  static final String ORT_ACC0 = "ort-matmulnbits-acc0";
  static final String ORT_DENSE = "ort-matmul-fp32";
  static final String OURS = "q4spark";

  /** One call of the layer. */
  @FunctionalInterface
  interface Call {
    void run() throws Exception;
  }
}
