package io.q4spark.spark.plugin;

import java.io.Serializable;

/**
 * An executor's request to the driver plugin for the registered model {@code name}: the reply is
 * its {@link io.q4spark.spark.model.ModelHandle}, or a {@code String} saying why there is none
 * (naming the registered models). Used where a task knows a model only by name: the row-at-a-time
 * SQL function.
 *
 * @param name the registered name asked for
 */
public record ModelLookup(String name) implements Serializable {
  private static final long serialVersionUID = 1L;
}
