package io.q4spark.kernels.format;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.QuantScheme;

/**
 * What a checkpoint's quantization config says about its linear layers, format-independently.
 *
 * @param scheme W4A16, or W4A8 when activations are quantized per token to int8
 * @param symmetric whether weights are symmetric (no zero points)
 * @param groupSize group size along K, -1 for one group over K (channel-wise)
 * @param actOrder whether act-order {@code g_idx} tensors are used
 * @param modelDtype the model's activation dtype
 */
public record QuantizationArgs(
    QuantScheme scheme, boolean symmetric, int groupSize, boolean actOrder, DType modelDtype) {}
