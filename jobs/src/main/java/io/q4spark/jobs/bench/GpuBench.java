package io.q4spark.jobs.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.cuda.Cublas;
import io.q4spark.kernels.cuda.CudaDevice;
import io.q4spark.kernels.cuda.CudaOptions;
import io.q4spark.kernels.cuda.CudaProbe;
import io.q4spark.kernels.cuda.CudaTiming;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code q4spark bench gpu}: our CUDA W4A16 and W4A8 kernels against cuBLAS fp16 dense, in one
 * process and one run, timed on the device ({@link CudaTiming}: CUDA events around back-to-back
 * calls). Cold throughout: every backend rotates over copies of its weights that together exceed
 * twice the L2, so weights come from HBM as they would for a model's many layers. The HBM floor of
 * a row is the bytes a call must move (int4 weights, scales, activations in and out) at the copy
 * bandwidth measured first.
 */
public final class GpuBench {
  /** Bytes per direction for the copy-bandwidth measurement: far beyond L2. */
  private static final long COPY_BYTES = 1L << 30;

  private static final int COPY_REPS = 10;

  /** The seed's Triton W4A16 kernel on this H100, from ../shared/reference/anchors.md (µs). */
  private static final Map<String, Double> SEED_TRITON_US = seedTriton();

  private final GpuBenchOptions options;
  private final PrintStream out;

  GpuBench(GpuBenchOptions options, PrintStream out) {
    this.options = options;
    this.out = out;
  }

  /** One measured row. */
  record Row(
      String backend,
      int m,
      int k,
      int n,
      int g,
      int copies,
      long weightBytes,
      double medianUs,
      double p10Us,
      double p90Us,
      double tflops,
      double weightGbPerS,
      double floorUs,
      double ratioToCublas,
      Double seedTritonUs) {}

  int run() throws IOException {
    CudaProbe probe = CudaDevice.probe(CudaOptions.defaults());
    if (!probe.available()) {
      out.println("bench gpu: no usable CUDA device: " + probe.reason());
      return 1;
    }
    CudaDevice device = CudaDevice.shared(CudaOptions.defaults());
    out.printf(
        Locale.ROOT,
        "device: %s, %d SMs, %.1f GiB, %s%n",
        device.name(),
        device.smCount(),
        device.totalMemory() / (double) (1L << 30),
        probe.reason());
    List<Row> rows = new ArrayList<>();
    try (CudaTiming timing = new CudaTiming(device)) {
      double bandwidth = timing.copyBandwidth(COPY_BYTES, COPY_REPS);
      out.printf(
          Locale.ROOT,
          "device-to-device copy: %.0f GB/s (bytes read + written, median of %d copies of 1 GiB)%n",
          bandwidth,
          COPY_REPS);
      Cublas cublas =
          options.backends().contains("cublas") ? Cublas.load(CudaOptions.defaults()) : null;
      out.printf(
          Locale.ROOT,
          "%-11s %5s  %-7s %9s %17s %8s %8s %9s %8s %7s %9s%n",
          "K x N",
          "M",
          "backend",
          "median µs",
          "p10-p90 µs",
          "TFLOP/s",
          "GB/s w",
          "floor µs",
          "% floor",
          "xcuBLAS",
          "seed µs");
      for (int[] shape : options.shapes()) {
        int k = shape[0];
        int n = shape[1];
        BenchWeights w = BenchWeights.random(k, n, options.group(), 42L + k + n);
        long int4Bytes = int4Bytes(k, n);
        int int4Copies = copies(int4Bytes);
        Map<String, CudaTiming.QuantizedCopies> ours = new LinkedHashMap<>();
        try {
          for (String b : options.backends()) {
            if (!b.equals("cublas")) {
              QuantScheme scheme = b.equals("w4a8") ? QuantScheme.W4A8 : QuantScheme.W4A16;
              ours.put(b, timing.upload(w.layer(w.config(scheme, DType.F16)), int4Copies));
            }
          }
          for (int m : options.rows()) {
            List<Row> shapeRows = new ArrayList<>();
            double cublasUs = Double.NaN;
            if (cublas != null) {
              long bytes = 2L * k * n;
              int copies = copies(bytes);
              CudaTiming.Samples s =
                  timing.timeCublas(cublas, k, n, m, copies, calls(copies), options.reps());
              Row r = row("cublas", m, k, n, copies, bytes, s, bandwidth, Double.NaN);
              cublasUs = r.medianUs();
              shapeRows.add(r);
            }
            for (Map.Entry<String, CudaTiming.QuantizedCopies> e : ours.entrySet()) {
              CudaTiming.Samples s = e.getValue().time(m, calls(int4Copies), options.reps());
              shapeRows.add(
                  row(e.getKey(), m, k, n, int4Copies, int4Bytes, s, bandwidth, cublasUs));
            }
            for (Row r : shapeRows) {
              print(r);
            }
            rows.addAll(shapeRows);
          }
        } finally {
          ours.values().forEach(CudaTiming.QuantizedCopies::close);
        }
      }
    }
    if (options.json() != null) {
      Map<String, Object> report = new LinkedHashMap<>();
      report.put("device", device.name());
      report.put("rows", rows);
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .writeValue(Files.newBufferedWriter(options.json()), report);
      out.println("wrote " + options.json());
    }
    return 0;
  }

  /** Bytes one call of our kernels must read: int4 weights and fp16 group scales. */
  private long int4Bytes(int k, int n) {
    return (long) k * n / 2 + 2L * (k / options.group()) * n;
  }

  /** Copies whose weights together exceed twice the L2 (at least 2). */
  static int copies(long weightBytes) {
    return (int) Math.max(2, 2 * CudaTiming.L2_BYTES / weightBytes + 1);
  }

  private int calls(int copies) {
    return Math.max(options.calls(), copies);
  }

  private Row row(
      String backend,
      int m,
      int k,
      int n,
      int copies,
      long weightBytes,
      CudaTiming.Samples s,
      double bandwidth,
      double cublasUs) {
    Quantiles q = new Quantiles(s.micros());
    double median = q.at(0.5);
    double flops = 2.0 * m * k * n;
    double floorBytes = int4Bytes(k, n) + 2.0 * m * k + 2.0 * m * n;
    double floorUs = floorBytes / (bandwidth * 1e3);
    Double seed = SEED_TRITON_US.get(m + " " + k + " " + n);
    return new Row(
        backend,
        m,
        k,
        n,
        options.group(),
        copies,
        weightBytes,
        median,
        q.at(0.1),
        q.at(0.9),
        flops / (median * 1e6),
        weightBytes / (median * 1e3),
        floorUs,
        backend.equals("cublas") ? 1.0 : cublasUs / median,
        backend.equals("w4a16") ? seed : null);
  }

  private void print(Row r) {
    out.printf(
        Locale.ROOT,
        "%-11s %5d  %-7s %9.1f %8.1f-%-8.1f %8.1f %8.0f %9.1f %7.0f%% %7.2f %9s%n",
        r.k() + "x" + r.n(),
        r.m(),
        r.backend(),
        r.medianUs(),
        r.p10Us(),
        r.p90Us(),
        r.tflops(),
        r.weightGbPerS(),
        r.floorUs(),
        100 * r.floorUs() / r.medianUs(),
        r.ratioToCublas(),
        r.seedTritonUs() == null ? "-" : String.format(Locale.ROOT, "%.1f", r.seedTritonUs()));
  }

  private static Map<String, Double> seedTriton() {
    Map<String, Double> m = new LinkedHashMap<>();
    double[][] t = {
      {1, 4096, 4096, 50.6}, {16, 4096, 4096, 49.7}, {256, 4096, 4096, 118.0},
      {1024, 4096, 4096, 144.4}, {8192, 4096, 4096, 1106.8}, {1, 4096, 6144, 48.7},
      {1024, 4096, 6144, 277.9}, {8192, 4096, 6144, 1652.9}, {1, 4096, 14336, 66.3},
      {16, 4096, 14336, 66.8}, {64, 4096, 14336, 74.0}, {256, 4096, 14336, 142.1},
      {1024, 4096, 14336, 561.8}, {8192, 4096, 14336, 3839.0}, {1, 14336, 4096, 167.1},
      {16, 14336, 4096, 176.1}, {256, 14336, 4096, 396.6}, {1024, 14336, 4096, 517.4},
      {8192, 14336, 4096, 3823.9}
    };
    for (double[] r : t) {
      m.put((int) r[0] + " " + (int) r[1] + " " + (int) r[2], r[3]);
    }
    return m;
  }
}
