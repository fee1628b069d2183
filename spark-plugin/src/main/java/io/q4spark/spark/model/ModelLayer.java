package io.q4spark.spark.model;

import io.q4spark.kernels.QuantizedLinear;

/**
 * One layer of a model: the quantized linear layer (with its bias, if the checkpoint has one) and
 * the activation applied to its outputs.
 */
public record ModelLayer(QuantizedLinear linear, Activation activation) {
  public String name() {
    return linear.config().layer();
  }

  /** One line: the layer's configuration and its activation. */
  public String describe() {
    return linear.config().describe()
        + (linear.bias() != null ? " +bias" : "")
        + (activation != Activation.NONE ? " -> " + activation.configName() : "");
  }
}
