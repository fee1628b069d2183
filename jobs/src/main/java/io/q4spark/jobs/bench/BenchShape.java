package io.q4spark.jobs.bench;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * One layer shape to benchmark, with the rows (M) and cache modes it runs at by default.
 *
 * <p>The presets are issue 3's shapes: a 4096x4096 layer at M = 1, 16, 256 hot and cold (its 8.9 MB
 * of int4 weights fit in a 32 MiB L3, so hot and cold differ); Llama-3-8B's MLP layers 4096x14336
 * and 14336x4096 at M = 1 and 256, cold (31 MB of weights and scales already fill the L3; rotating
 * copies makes them come from DRAM); MiniLM's 384x1536 and 1536x384 at M = 1024, hot (0.3 MB of
 * weights: a compute-bound batch).
 *
 * @param name e.g. {@code 4096x4096}
 * @param k input features
 * @param n output features
 * @param rows the M values run by default
 * @param modes hot, cold or both, by default
 */
record BenchShape(String name, int k, int n, List<Integer> rows, List<Mode> modes) {
  /** Same weights every call, or a rotation over copies larger than the caches. */
  enum Mode {
    HOT,
    COLD;

    String label() {
      return name().toLowerCase(Locale.ROOT);
    }

    static Mode parse(String s) {
      return switch (s.trim().toLowerCase(Locale.ROOT)) {
        case "hot" -> HOT;
        case "cold" -> COLD;
        default ->
            throw new IllegalArgumentException("unknown mode '" + s + "': expected hot or cold");
      };
    }
  }

  static final List<BenchShape> PRESETS =
      List.of(
          new BenchShape(
              "4096x4096", 4096, 4096, List.of(1, 16, 256), List.of(Mode.HOT, Mode.COLD)),
          new BenchShape("4096x14336", 4096, 14336, List.of(1, 256), List.of(Mode.COLD)),
          new BenchShape("14336x4096", 14336, 4096, List.of(1, 256), List.of(Mode.COLD)),
          new BenchShape("384x1536", 384, 1536, List.of(1024), List.of(Mode.HOT)),
          new BenchShape("1536x384", 1536, 384, List.of(1024), List.of(Mode.HOT)));

  /** Rows and modes for a shape given as {@code KxN} that is not a preset. */
  static final List<Integer> CUSTOM_ROWS = List.of(1, 16, 256);

  static final String SHAPES_HELP =
      "a comma-separated list of 4096x4096, 4096x14336, 14336x4096, 384x1536, 1536x384, llama"
          + " (both Llama-3-8B MLP shapes), minilm (both MiniLM shapes), all, or any KxN";

  /**
   * The shapes named by {@code spec}: preset names, {@code llama}, {@code minilm}, {@code all}, or
   * {@code KxN} (M = 1, 16, 256, hot and cold). Duplicates are dropped, order kept.
   */
  static List<BenchShape> select(String spec) {
    Set<BenchShape> out = new LinkedHashSet<>();
    for (String raw : spec.split(",")) {
      String s = raw.trim().toLowerCase(Locale.ROOT);
      switch (s) {
        case "" -> {}
        case "all" -> out.addAll(PRESETS);
        case "llama" -> {
          out.add(preset("4096x14336"));
          out.add(preset("14336x4096"));
        }
        case "minilm" -> {
          out.add(preset("384x1536"));
          out.add(preset("1536x384"));
        }
        default -> out.add(parse(s));
      }
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException("no shape in '" + spec + "': expected " + SHAPES_HELP);
    }
    return new ArrayList<>(out);
  }

  private static BenchShape preset(String name) {
    return PRESETS.stream().filter(p -> p.name.equals(name)).findFirst().orElseThrow();
  }

  private static BenchShape parse(String s) {
    for (BenchShape p : PRESETS) {
      if (p.name.equals(s)) {
        return p;
      }
    }
    String[] kn = s.split("x");
    try {
      if (kn.length == 2) {
        int k = Integer.parseInt(kn[0]);
        int n = Integer.parseInt(kn[1]);
        if (k > 0 && n > 0) {
          return new BenchShape(k + "x" + n, k, n, CUSTOM_ROWS, List.of(Mode.HOT, Mode.COLD));
        }
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new IllegalArgumentException("unknown shape '" + s + "': expected " + SHAPES_HELP);
  }

  /** This shape with other rows and modes (null keeps the defaults). */
  BenchShape with(List<Integer> newRows, List<Mode> newModes) {
    return new BenchShape(
        name, k, n, newRows == null ? rows : newRows, newModes == null ? modes : newModes);
  }
}
