package io.q4spark.jobs.bench;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code bench cpu}: our kernels, ONNX Runtime's MatMulNBits at accuracy levels 4 and 0, and ONNX
 * Runtime's fp32 MatMul on the dequantized weights, all built from the same weights and timed side
 * by side in one process, against the DRAM read roof measured in the same run.
 *
 * <p>Order of work: an idle check (load average, two calibration runs), the DRAM bandwidth, then
 * per shape: build every backend, check each one's output against the fp32 peer, reset the heap
 * peaks, and time each row (M, mode) with {@link RoundRobinTimer}. Rows print as they finish.
 */
final class CpuBench {
  /**
   * Calls of each of our kernels in the heap check after the timing: enough to pass every per-call
   * allocation through the young generation, few enough to stay a second or two.
   */
  static final int OWN_HEAP_CALLS = 20;

  /** Fixed so that every run benchmarks the same weights and activations. */
  static final long SEED = 42;

  /**
   * An output further than this from the fp32 peer's, relative to the largest output, is reported:
   * int8 activations (acc4, W4A8) stay near 1e-2, fp16 activations near 1e-3.
   */
  static final double MAX_RELATIVE_ERROR = 5e-2;

  /**
   * Set to 1 before ONNX Runtime 1.29 loads, this keeps its telemetry (background upload threads, a
   * device id and an event cache under ~/.cache) from starting.
   */
  static final String TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY";

  /** Measured DRAM passes (quick: 2): about 10 ms each; the best of many is the roof. */
  static final int DRAM_PASSES = 30;

  private final CpuBenchOptions options;
  private final PrintStream out;
  private final Set<String> printedSkips = new HashSet<>();

  CpuBench(CpuBenchOptions options, PrintStream out) {
    this.options = options;
    this.out = out;
  }

  int run(String[] args) throws Exception {
    int threads = options.threads();
    JsonReport json = new JsonReport(args, options);
    out.printf(
        Locale.ROOT,
        "bench cpu: %d thread(s) per call, %d cpus, java %s%s%n",
        threads,
        Runtime.getRuntime().availableProcessors(),
        System.getProperty("java.version"),
        options.quick() ? ", --quick (few iterations: the numbers mean nothing)" : "");

    if (!"1".equals(System.getenv(TELEMETRY_ENV))) {
      out.println(
          "WARNING: "
              + TELEMETRY_ENV
              + " is not 1: ONNX Runtime 1.29 runs its telemetry uploader beside the timed calls"
              + " (and crashes parsing a long command line); run through bin/q4spark, which sets it");
    }
    IdleCheck.Result idle =
        IdleCheck.run(threads, options.quick() ? IdleCheck.FULL_STEPS / 50 : IdleCheck.FULL_STEPS);
    out.println(idle.describe());
    idle.warnings().forEach(out::println);
    json.idleCheck(idle);

    DramBandwidth.Result dram = DramBandwidth.measure(threads, options.quick() ? 2 : DRAM_PASSES);
    out.printf(
        Locale.ROOT,
        "DRAM read bandwidth, %d thread(s): best %.1f GB/s, median %.1f GB/s over %d passes of %d"
            + " MiB (%s)%n",
        threads,
        dram.best(),
        dram.median(),
        dram.gbPerSecond().length,
        dram.bytes() >> 20,
        dram.loop());
    json.dram(dram);
    System.gc(); // drop the bandwidth array before the heap is watched

    RoundRobinTimer timer =
        new RoundRobinTimer(
            options.quick() ? RoundRobinTimer.Budget.quick() : RoundRobinTimer.Budget.full());
    out.println();
    ResultTable.header(out);
    for (BenchShape shape : options.shapes()) {
      try (ShapeBackends sb =
          ShapeBackends.create(shape, threads, options.acts(), options.kernels(), SEED)) {
        for (ShapeBackends.Skip s : sb.skips()) {
          String key = s.kernel() + "|" + s.act() + "|" + s.reason();
          if (printedSkips.add(key)) {
            out.println(
                "  skipped "
                    + s.kernel()
                    + " ("
                    + (s.scheme() == null ? "" : s.scheme() + ", ")
                    + "act "
                    + s.act()
                    + "): "
                    + s.reason());
            json.skip(s);
          }
        }
        Map<String, List<Backend>> rows = new LinkedHashMap<>();
        for (int m : shape.rows()) {
          for (BenchShape.Mode mode : shape.modes()) {
            rows.put(m + "|" + mode, sb.backends(m, mode));
          }
        }
        HeapPeak heap = new HeapPeak();
        heap.start();
        for (Map.Entry<String, List<Backend>> e : rows.entrySet()) {
          String[] key = e.getKey().split("\\|");
          int m = Integer.parseInt(key[0]);
          BenchShape.Mode mode = BenchShape.Mode.valueOf(key[1]);
          List<Backend> backends = e.getValue();
          Map<Backend, Double> errors = check(shape, m, backends);
          List<RoundRobinTimer.Timing> timings = timer.measure(backends);
          List<Measurement> row = new ArrayList<>();
          for (RoundRobinTimer.Timing t : timings) {
            row.add(measurement(shape, sb, m, mode, t, errors.get(t.backend())));
          }
          row.add(roof(shape, sb, m, mode, dram));
          ResultTable.row(out, row);
          json.row(row);
        }
        out.printf(
            Locale.ROOT,
            "  heap %s: %.1f MiB resident after setup (packed weights and buffers), peak %.1f MiB"
                + " during timing: %.1f MiB beyond the resident set%n",
            shape.name(),
            heap.resident() / 1048576.0,
            heap.peak() / 1048576.0,
            heap.beyondResident() / 1048576.0);
        json.heap(shape.name(), heap);
        // The peak above includes the peers' per-call allocations (ONNX Runtime returns new
        // output arrays): run our kernels alone, every row count and mode, for their own figure.
        HeapPeak ours = new HeapPeak();
        ours.start();
        for (List<Backend> backends : rows.values()) {
          for (Backend b : backends) {
            if (b.id().equals(Backend.OURS)) {
              for (int i = 0; i < OWN_HEAP_CALLS; i++) {
                b.call().run();
              }
            }
          }
        }
        out.printf(
            Locale.ROOT,
            "  heap %s, q4spark kernels alone (%d calls of each): %.1f MiB beyond the resident"
                + " set, which grew by %.1f MiB across the timing (the kernels' per-thread scratch"
                + " and what the peers keep)%n",
            shape.name(),
            OWN_HEAP_CALLS,
            ours.beyondResident() / 1048576.0,
            (ours.resident() - heap.resident()) / 1048576.0);
        json.heap(shape.name() + " q4spark", ours);
      }
    }
    out.println(
        "x acc4, x acc0: median time over ONNX Runtime MatMulNBits' at accuracy level 4 / 0 in the"
            + " same row (below 1 is faster); GB/s: weight and scale bytes (fp32 for MatMul) per"
            + " median call; KiB/call: Java heap allocated per call; DRAM roof: int4 weights and"
            + " scales read at the best measured bandwidth.");
    if (options.json() != null) {
      json.write(options.json());
      out.println("wrote " + options.json());
    }
    return 0;
  }

  /**
   * Runs each backend once and compares its output with the fp32 peer's: max |y - y_fp32| / max
   * |y_fp32|. A backend far off is reported; it is still timed.
   */
  private Map<Backend, Double> check(BenchShape shape, int m, List<Backend> backends)
      throws Exception {
    Map<Backend, float[]> outputs = new LinkedHashMap<>();
    for (Backend b : backends) {
      b.call().run();
      outputs.put(b, b.output().get());
    }
    float[] ref =
        outputs.entrySet().stream()
            .filter(e -> e.getKey().id().equals(Backend.ORT_DENSE))
            .map(Map.Entry::getValue)
            .findFirst()
            .orElseThrow();
    double largest = 0;
    for (float v : ref) {
      largest = Math.max(largest, Math.abs(v));
    }
    Map<Backend, Double> errors = new LinkedHashMap<>();
    for (Map.Entry<Backend, float[]> e : outputs.entrySet()) {
      float[] y = e.getValue();
      double worst = 0;
      for (int i = 0; i < ref.length; i++) {
        worst = Math.max(worst, Math.abs((double) y[i] - ref[i]));
      }
      double rel = worst / largest;
      errors.put(e.getKey(), rel);
      if (!(rel <= MAX_RELATIVE_ERROR)) {
        out.printf(
            Locale.ROOT,
            "WARNING: %s on %s M=%d is %.3g from the fp32 MatMul, relative to its largest output"
                + " (more than %.3g): the backends do not compute the same layer%n",
            e.getKey().label(),
            shape.name(),
            m,
            rel,
            MAX_RELATIVE_ERROR);
      }
    }
    return errors;
  }

  private Measurement measurement(
      BenchShape shape,
      ShapeBackends sb,
      int m,
      BenchShape.Mode mode,
      RoundRobinTimer.Timing t,
      Double error) {
    Quantiles q = t.quantiles();
    Backend b = t.backend();
    return new Measurement(
        b.id(),
        b.label(),
        b.kernel(),
        b.act(),
        b.scheme(),
        shape.name(),
        mode,
        m,
        shape.k(),
        shape.n(),
        sb.weights().group(),
        options.threads(),
        b.copies(),
        b.weightBytes(),
        q.median() / 1e6,
        q.at(0.1) / 1e6,
        q.at(0.9) / 1e6,
        q.count(),
        t.callsPerRep(),
        t.allocatedBytesPerCall(),
        error == null ? Double.NaN : error);
  }

  private Measurement roof(
      BenchShape shape, ShapeBackends sb, int m, BenchShape.Mode mode, DramBandwidth.Result dram) {
    long bytes = sb.weights().packedBytes();
    double ms = dram.roofMillis(bytes);
    return new Measurement(
        Measurement.DRAM_ROOF,
        "DRAM roof",
        null,
        null,
        "int4",
        shape.name(),
        mode,
        m,
        shape.k(),
        shape.n(),
        sb.weights().group(),
        options.threads(),
        1,
        bytes,
        ms,
        ms,
        ms,
        0,
        0,
        Double.NaN,
        Double.NaN);
  }
}
