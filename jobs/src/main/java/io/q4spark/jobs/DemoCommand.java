package io.q4spark.jobs;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.Q4Linear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.format.CompressedTensorsCheckpoint;
import io.q4spark.kernels.format.QuantizationArgs;
import io.q4spark.kernels.quantize.Int4WeightQuantizer;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * {@code q4spark demo [--rows R] [--dir DIR]}: makes a small quantized MLP (two int4 linear layers
 * with a ReLU between them), writes it as a real compressed-tensors checkpoint, reads it back, runs
 * a generated dataset through the selected kernels in batches, and compares with an fp32 evaluation
 * of the same dequantized weights. Ends with {@code demo: <rows> rows, <rows/s> rows/s, max
 * relative error <e> vs fp32 reference}.
 */
final class DemoCommand implements Main.Command {
  /** Fixed so every run makes the same model and data. */
  private static final long SEED = 42;

  private static final int IN = 256;
  private static final int HIDDEN = 512;
  private static final int OUT = 128;
  private static final int GROUP = 128;
  private static final int BATCH_ROWS = 1024;
  private static final DType DTYPE = DType.F16;

  @Override
  public String summary() {
    return "make a quantized MLP checkpoint and a dataset, run them through the kernels";
  }

  @Override
  public int run(String[] args, PrintStream out) throws Main.UsageException {
    int rows = 8192;
    Path dir = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--rows" -> {
          if (i + 1 >= args.length) {
            throw new Main.UsageException("--rows needs a value");
          }
          try {
            rows = Integer.parseInt(args[++i]);
          } catch (NumberFormatException e) {
            rows = -1;
          }
          if (rows <= 0) {
            throw new Main.UsageException(
                "The value of --rows should be a positive integer, but was " + args[i]);
          }
        }
        case "--dir" -> {
          if (i + 1 >= args.length) {
            throw new Main.UsageException("--dir needs a value");
          }
          dir = Path.of(args[++i]);
        }
        default ->
            throw new Main.UsageException(
                "unknown argument '" + args[i] + "'; usage: demo [--rows R] [--dir DIR]");
      }
    }
    try {
      if (dir == null) {
        dir = Files.createTempDirectory("q4spark-demo");
      } else {
        Files.createDirectories(dir);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }

    Random r = new Random(SEED);
    QuantizationArgs qargs = new QuantizationArgs(QuantScheme.W4A16, true, GROUP, false, DTYPE);
    List<QuantizedLinear> model =
        List.of(
            quantizedLayer("mlp.up_proj", IN, HIDDEN, r),
            quantizedLayer("mlp.down_proj", HIDDEN, OUT, r));
    CompressedTensorsCheckpoint.write(dir, qargs, model, 1);
    out.println(
        "demo: wrote a compressed-tensors checkpoint ("
            + IN
            + " -> "
            + HIDDEN
            + " -> "
            + OUT
            + ", int4, G="
            + GROUP
            + ") to "
            + dir);

    List<Q4Linear> layers = new ArrayList<>();
    try (CompressedTensorsCheckpoint ckpt = CompressedTensorsCheckpoint.open(dir)) {
      for (String name : List.of("mlp.up_proj", "mlp.down_proj")) {
        Q4Linear layer = Q4Linear.create(ckpt.layer(name), KernelOptions.fromEnvironment());
        out.println("demo: " + name + " runs on " + layer.kernel());
        layers.add(layer);
      }
    }

    float[] data = new float[rows * IN];
    for (int i = 0; i < data.length; i++) {
      data[i] = DTYPE.round((float) r.nextGaussian());
    }
    float[] result = new float[rows * OUT];
    long start = System.nanoTime();
    for (int row0 = 0; row0 < rows; row0 += BATCH_ROWS) {
      int m = Math.min(BATCH_ROWS, rows - row0);
      float[] x = java.util.Arrays.copyOfRange(data, row0 * IN, (row0 + m) * IN);
      float[] h = layers.get(0).apply(x, m);
      for (int i = 0; i < h.length; i++) {
        h[i] = Math.max(0f, h[i]);
      }
      float[] y = layers.get(1).apply(h, m);
      System.arraycopy(y, 0, result, row0 * OUT, y.length);
    }
    double seconds = (System.nanoTime() - start) / 1e9;

    double[] ref = fp32Reference(model, data, rows);
    double maxRef = 0;
    double maxErr = 0;
    for (int i = 0; i < ref.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
      maxErr = Math.max(maxErr, Math.abs(result[i] - ref[i]));
    }
    layers.forEach(Q4Linear::close);
    out.printf(
        "demo: %d rows, %.0f rows/s, max relative error %.2e vs fp32 reference%n",
        rows, rows / seconds, maxErr / maxRef);
    return 0;
  }

  private static QuantizedLinear quantizedLayer(String name, int k, int n, Random r) {
    float[] w = new float[k * n];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (r.nextGaussian() / Math.sqrt(k));
    }
    Int4WeightQuantizer.Result q = Int4WeightQuantizer.quantize(w, k, n, GROUP, true, DTYPE);
    float[] bias = new float[n];
    for (int i = 0; i < n; i++) {
      bias[i] = DTYPE.round((float) r.nextGaussian() * 0.1f);
    }
    LinearLayerConfig c =
        LinearLayerConfig.of(
            name, k, n, ScalarType.UINT4B8, DTYPE, GROUP, false, false, QuantScheme.W4A16);
    return new QuantizedLinear(
        c,
        PackedInt4Matrix.fromCodes(Int4Layout.K_N8, k, n, q.codes()),
        q.scales(),
        null,
        null,
        bias);
  }

  /**
   * fp32 math on the dequantized weights (each rounded to the model dtype), ReLU between layers.
   */
  private static double[] fp32Reference(List<QuantizedLinear> model, float[] data, int rows) {
    float[] x = data;
    int width = IN;
    for (int li = 0; li < model.size(); li++) {
      QuantizedLinear l = model.get(li);
      int k = l.config().k();
      int n = l.config().n();
      float[] w = new float[k * n];
      for (int kk = 0; kk < k; kk++) {
        for (int nn = 0; nn < n; nn++) {
          w[kk * n + nn] = DTYPE.round(l.value(kk, nn) * l.scales()[l.group(kk) * n + nn]);
        }
      }
      float[] y = new float[rows * n];
      for (int m = 0; m < rows; m++) {
        for (int nn = 0; nn < n; nn++) {
          float acc = l.bias()[nn];
          for (int kk = 0; kk < width; kk++) {
            acc += x[m * width + kk] * w[kk * n + nn];
          }
          y[m * n + nn] = li + 1 < model.size() ? Math.max(0f, acc) : acc;
        }
      }
      x = y;
      width = n;
    }
    double[] out = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = x[i];
    }
    return out;
  }
}
