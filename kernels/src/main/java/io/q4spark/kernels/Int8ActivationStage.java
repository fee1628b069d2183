package io.q4spark.kernels;

/**
 * Implemented by prepared W4A8 kernels: their first stage, the per-token int8 quantization of the
 * activations, exposed so conformance tests can check codes and scales bit for bit.
 */
public interface Int8ActivationStage {
  /**
   * @param codes receives {@code rows * K} int8 codes
   * @param scales receives {@code rows} per-token scales (values of the activation dtype)
   */
  void quantizeActivations(float[] x, int rows, byte[] codes, float[] scales);
}
