package io.q4spark.jobs.bench;

/**
 * One line of the report: one backend on one (shape, M, mode), or the DRAM roof of that row.
 *
 * @param backend {@link Backend#id()}, or {@value #DRAM_ROOF}
 * @param label the table's label
 * @param kernel our kernel's name, or null
 * @param act activation dtype
 * @param scheme W4A16, W4A8 or fp32
 * @param shape the shape's name
 * @param mode hot or cold
 * @param m rows
 * @param k input features
 * @param n output features
 * @param g group size
 * @param threads threads per call
 * @param copies weight copies rotated over
 * @param weightBytes bytes of weights and scales one call reads
 * @param medianMs median time per call
 * @param p10Ms 10th percentile
 * @param p90Ms 90th percentile
 * @param reps timed repetitions (0 for the roof)
 * @param callsPerRep calls per repetition
 * @param allocatedBytesPerCall heap allocated per call by all threads, NaN if unknown
 * @param maxRelativeError max |y - y_fp32| / max |y_fp32| against the fp32 dense peer, NaN if none
 */
record Measurement(
    String backend,
    String label,
    String kernel,
    String act,
    String scheme,
    String shape,
    BenchShape.Mode mode,
    int m,
    int k,
    int n,
    int g,
    int threads,
    int copies,
    long weightBytes,
    double medianMs,
    double p10Ms,
    double p90Ms,
    int reps,
    int callsPerRep,
    double allocatedBytesPerCall,
    double maxRelativeError) {
  static final String DRAM_ROOF = "dram-roof";

  /** Weight bytes over the median time, 10^9 bytes per second. */
  double gbPerSecond() {
    return weightBytes / medianMs / 1e6;
  }

  /** Whether {@code other} is the same benchmark row (shape, M, mode). */
  boolean sameRow(Measurement other) {
    return shape.equals(other.shape) && m == other.m && mode == other.mode;
  }
}
