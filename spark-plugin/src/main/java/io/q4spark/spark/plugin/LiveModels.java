package io.q4spark.spark.plugin;

import java.io.Serializable;

/**
 * An executor's request to the driver plugin for the broadcast ids of the registered models; the
 * reply is a {@code Set<Long>}.
 */
public enum LiveModels implements Serializable {
  REQUEST
}
