package io.q4spark.jobs.bench;

import java.io.PrintStream;
import java.util.List;
import java.util.Locale;

/**
 * The printed table, one line per (shape, M, mode, backend), about 100 columns:
 *
 * <pre>
 *   shape         M mode backend          median ms  p10 .. p90 ms       x acc4 x acc0   GB/s KiB/call
 *   4096x4096     1 hot  ORT nbits acc4      0.3012   0.2950 .. 0.3101    1.00   0.22   29.6      0.1
 * </pre>
 *
 * {@code x acc4} and {@code x acc0} are this line's median time over ONNX Runtime MatMulNBits'
 * median at accuracy level 4 and 0 in the same row: below 1 is faster. GB/s is the bytes of weights
 * and scales the backend reads (fp32 for the dense peer) over its median time. KiB/call is heap
 * allocated per call by all Java threads. The DRAM roof line is the int4 weights and scales read at
 * the measured bandwidth.
 */
final class ResultTable {
  static final int BACKEND_WIDTH = 18;

  private static final String FORMAT =
      "%-11s %5s %-4s %-" + BACKEND_WIDTH + "s %9s  %-19s %6s %6s %6s %8s%n";

  private ResultTable() {}

  static void header(PrintStream out) {
    out.printf(
        Locale.ROOT,
        FORMAT,
        "shape",
        "M",
        "mode",
        "backend",
        "median ms",
        "p10 .. p90 ms",
        "x acc4",
        "x acc0",
        "GB/s",
        "KiB/call");
  }

  /** Prints the lines of one row (the same shape, M and mode). */
  static void row(PrintStream out, List<Measurement> row) {
    Measurement acc4 = find(row, Backend.ORT_ACC4);
    Measurement acc0 = find(row, Backend.ORT_ACC0);
    for (Measurement m : row) {
      boolean roof = m.backend().equals(Measurement.DRAM_ROOF);
      out.printf(
          Locale.ROOT,
          FORMAT,
          m.shape(),
          m.m(),
          m.mode().label(),
          clip(m.label()),
          ms(m.medianMs()),
          roof ? "" : ms(m.p10Ms()) + " .. " + ms(m.p90Ms()),
          ratioText(m, acc4),
          ratioText(m, acc0),
          String.format(Locale.ROOT, "%.1f", m.gbPerSecond()),
          roof || Double.isNaN(m.allocatedBytesPerCall())
              ? ""
              : String.format(Locale.ROOT, "%.1f", m.allocatedBytesPerCall() / 1024));
    }
  }

  static Measurement find(List<Measurement> row, String backend) {
    return row.stream().filter(m -> m.backend().equals(backend)).findFirst().orElse(null);
  }

  /** This line's median over {@code peer}'s, or NaN without a peer. */
  static double ratio(Measurement m, Measurement peer) {
    return peer == null ? Double.NaN : m.medianMs() / peer.medianMs();
  }

  private static String ratioText(Measurement m, Measurement peer) {
    double r = ratio(m, peer);
    return Double.isNaN(r) ? "-" : String.format(Locale.ROOT, "%.2f", r);
  }

  /** Four significant digits or so, in a fixed width. */
  static String ms(double v) {
    if (v < 1) {
      return String.format(Locale.ROOT, "%.4f", v);
    } else if (v < 10) {
      return String.format(Locale.ROOT, "%.3f", v);
    } else if (v < 100) {
      return String.format(Locale.ROOT, "%.2f", v);
    }
    return String.format(Locale.ROOT, "%.1f", v);
  }

  private static String clip(String s) {
    return s.length() <= BACKEND_WIDTH ? s : s.substring(0, BACKEND_WIDTH);
  }
}
