package io.q4spark.spark.arrow;

import io.q4spark.spark.conf.BadRowPolicy;
import io.q4spark.spark.conf.OutputFormat;
import io.q4spark.spark.model.ModelHandle;
import java.io.Serializable;

/**
 * Everything a task needs to run a model over its partition, fixed on the driver when the query is
 * built: small and serialisable (the weights travel in the model's broadcast).
 *
 * @param where who runs it, for messages ({@code Q4.apply(model 'mlp', column 'features')})
 * @param model the registered model
 * @param input the activation column
 * @param batchRows rows per batch
 * @param onBadRow what a row of the wrong length does
 * @param outputFormat how outputs are stored
 */
public record BatchPlan(
    String where,
    ModelHandle model,
    InputColumn input,
    int batchRows,
    BadRowPolicy onBadRow,
    OutputFormat outputFormat)
    implements Serializable {
  private static final long serialVersionUID = 1L;
}
