package io.q4spark.kernels.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.Q4Linear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.RandomLayers;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.quantize.Int4WeightQuantizer;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Layers made the way a checkpoint is made (float weights through {@link Int4WeightQuantizer}), the
 * comparisons the checkpoint tests share, and tools to break a written checkpoint on purpose.
 */
final class CheckpointFixtures {
  private CheckpointFixtures() {}

  /** Spread of the float weights; the quantizer's scales follow it, so any size works. */
  private static final float WEIGHT_STD = 0.05f;

  /** Largest per-column shift of the weights, so asymmetric zero points spread over 0..15. */
  private static final float MAX_COLUMN_SHIFT = 0.08f;

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /**
   * A layer and what the quantizer made of it, in the layer's own row order.
   *
   * @param codes [K, N] codes 0..15
   * @param scales [numGroups, N], already values of the model dtype
   * @param zeros [numGroups, N] zero codes, or null when symmetric
   * @param gIdx the act-order map, or null
   * @param bias [N] values of the model dtype, or null
   */
  record Quantized(
      QuantizedLinear layer,
      byte[] codes,
      float[] scales,
      byte[] zeros,
      int[] gIdx,
      float[] bias) {}

  /** What to make: scheme, shape, group size (-1 for one group over K), and options. */
  record Spec(
      String name,
      QuantScheme scheme,
      int k,
      int n,
      int groupSize,
      boolean symmetric,
      boolean actOrder,
      boolean bias,
      DType dtype) {
    Spec withName(String newName) {
      return new Spec(newName, scheme, k, n, groupSize, symmetric, actOrder, bias, dtype);
    }

    @Override
    public String toString() {
      return String.format(
          "%s %s K=%d N=%d G=%d %s%s%s %s",
          name,
          scheme,
          k,
          n,
          groupSize,
          symmetric ? "sym" : "asym",
          actOrder ? " act-order" : "",
          bias ? " bias" : "",
          dtype);
    }
  }

  static Spec w4a16(String name, int k, int n, int g, boolean sym, DType dtype) {
    return new Spec(name, QuantScheme.W4A16, k, n, g, sym, false, false, dtype);
  }

  /**
   * Random float weights [K, N] quantized per group. With act-order, rows are then shuffled: row k
   * of the layer is row {@code perm[k]} of the quantized matrix and {@code g_idx[k] = perm[k] / G},
   * which is what quantizing in act-order and storing in the original order produces.
   */
  static Quantized quantize(Spec s, Random r) {
    int k = s.k();
    int n = s.n();
    float[] w = new float[k * n];
    float[] shift = new float[n];
    for (int col = 0; col < n; col++) {
      shift[col] = s.symmetric() ? 0f : MAX_COLUMN_SHIFT * (2 * r.nextFloat() - 1);
    }
    for (int i = 0; i < w.length; i++) {
      w[i] = WEIGHT_STD * (float) r.nextGaussian() + shift[i % n];
    }
    Int4WeightQuantizer.Result q =
        Int4WeightQuantizer.quantize(w, k, n, s.groupSize(), s.symmetric(), s.dtype());
    byte[] codes = q.codes();
    int[] gIdx = null;
    if (s.actOrder()) {
      int g = s.groupSize() == -1 ? k : s.groupSize();
      int[] perm = shuffledIdentity(k, r);
      gIdx = new int[k];
      codes = new byte[k * n];
      for (int row = 0; row < k; row++) {
        gIdx[row] = perm[row] / g;
        System.arraycopy(q.codes(), perm[row] * n, codes, row * n, n);
      }
      if (LayerTensors.nonTrivialGIdx(gIdx, g) == null) {
        throw new IllegalStateException(s + ": the shuffle left g_idx trivial; pick another seed");
      }
    }
    float[] bias = s.bias() ? randomBias(n, s.dtype(), r) : null;
    return build(s, codes, q.scales(), q.zeros(), gIdx, bias, r);
  }

  /** A layer from given codes, with random scales (and the given zero codes when asymmetric). */
  static Quantized fromCodes(Spec s, byte[] codes, byte[] zeros, Random r) {
    int groups = s.groupSize() == -1 ? 1 : s.k() / s.groupSize();
    float[] scales = new float[groups * s.n()];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = s.dtype().round(0.05f * r.nextFloat() + 1e-3f);
    }
    float[] bias = s.bias() ? randomBias(s.n(), s.dtype(), r) : null;
    return build(s, codes, scales, zeros, null, bias, r);
  }

  private static Quantized build(
      Spec s, byte[] codes, float[] scales, byte[] zeros, int[] gIdx, float[] bias, Random r) {
    ScalarType type =
        s.scheme() == QuantScheme.W4A8
            ? ScalarType.INT4
            : s.symmetric() ? ScalarType.UINT4B8 : ScalarType.UINT4;
    LinearLayerConfig c =
        LinearLayerConfig.of(
            s.name(),
            s.k(),
            s.n(),
            type,
            s.dtype(),
            s.groupSize(),
            !s.symmetric(),
            gIdx != null,
            s.scheme());
    // Any source layout: the checkpoint writers must repack whatever they are given.
    Int4Layout layout = Int4Layout.values()[r.nextInt(Int4Layout.values().length)];
    if (!layout.packsK() && s.n() % Int4Layout.PACK != 0) {
      layout = Int4Layout.N_K8;
    }
    PackedInt4Matrix weight = PackedInt4Matrix.fromCodes(layout, s.k(), s.n(), codes);
    PackedInt4Matrix z = null;
    if (zeros != null) {
      Int4Layout zl = r.nextBoolean() ? Int4Layout.K_N8 : Int4Layout.N8_K;
      z = PackedInt4Matrix.fromCodes(zl, c.numGroups(), s.n(), zeros);
    }
    QuantizedLinear layer = new QuantizedLinear(c, weight, scales, z, gIdx, bias);
    return new Quantized(layer, codes, scales, zeros, gIdx, bias);
  }

  private static int[] shuffledIdentity(int size, Random r) {
    int[] p = new int[size];
    for (int i = 0; i < size; i++) {
      p[i] = i;
    }
    for (int i = size - 1; i > 0; i--) {
      int j = r.nextInt(i + 1);
      int t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  private static float[] randomBias(int n, DType dtype, Random r) {
    float[] b = new float[n];
    for (int i = 0; i < n; i++) {
      b[i] = dtype.round(0.1f * (float) r.nextGaussian());
    }
    return b;
  }

  /** Rounds every value to {@code written}, as a file of that dtype stores it. */
  static float[] rounded(float[] values, DType written) {
    if (values == null) {
      return null;
    }
    float[] out = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = written.round(values[i]);
    }
    return out;
  }

  /**
   * Asserts that {@code actual}, read back from a checkpoint whose floats are stored as {@code
   * written}, holds exactly what the quantizer produced: the codes in every layout, the scales and
   * bias after rounding to {@code written}, the zero codes, the act-order map and the config.
   */
  static void assertSameLayer(
      Quantized expected, QuantizedLinear actual, DType written, String context) {
    LinearLayerConfig e = expected.layer().config();
    LinearLayerConfig a = actual.config();
    assertEquals(e.layer(), a.layer(), context);
    assertEquals(e.k(), a.k(), context + ": K");
    assertEquals(e.n(), a.n(), context + ": N");
    assertEquals(e.weightType(), a.weightType(), context + ": weight type");
    assertEquals(e.actType(), a.actType(), context + ": activation dtype");
    assertEquals(e.scheme(), a.scheme(), context + ": scheme");
    // W4A8 readers resolve a group size of -1 to K, as vLLM's scheme does.
    int group = e.scheme() == QuantScheme.W4A8 ? e.effectiveGroupSize() : e.groupSize();
    assertEquals(group, a.groupSize(), context + ": group size");
    assertEquals(e.zeroPoints(), a.zeroPoints(), context + ": zero points");
    assertEquals(e.hasGIdx(), a.hasGIdx(), context + ": act-order");
    for (Int4Layout layout : Int4Layout.values()) {
      assertArrayEquals(
          expected.codes(),
          actual.weight().toLayout(layout).codes(),
          context + ": weight codes repacked to " + layout);
    }
    assertArrayEquals(
        rounded(expected.scales(), written), actual.scales(), context + ": scales [K/G, N]");
    if (expected.zeros() == null) {
      assertNull(actual.zeros(), context + ": zero points");
    } else {
      assertNotNull(actual.zeros(), context + ": zero points");
      for (Int4Layout layout : new Int4Layout[] {Int4Layout.K_N8, Int4Layout.N8_K}) {
        assertArrayEquals(
            expected.zeros(),
            actual.zeros().toLayout(layout).codes(),
            context + ": zero codes repacked to " + layout);
      }
    }
    assertArrayEquals(expected.gIdx(), actual.gIdx(), context + ": g_idx");
    assertArrayEquals(rounded(expected.bias(), written), actual.bias(), context + ": bias");
  }

  /**
   * Asserts that {@code readBack} computes exactly what {@code original} computes through {@link
   * Q4Linear} with default options (flat and per-row entry points), and that zero rows give an
   * empty output.
   */
  static void assertSameOutputs(
      QuantizedLinear original, QuantizedLinear readBack, int rows, Random r, String context) {
    LinearLayerConfig c = original.config();
    try (Q4Linear a = Q4Linear.create(original, KernelOptions.defaults());
        Q4Linear b = Q4Linear.create(readBack, KernelOptions.defaults())) {
      assertEquals(a.kernel(), b.kernel(), context + ": kernel");
      float[] x = RandomLayers.activations(rows, c.k(), c.actType(), r);
      float[] expected = a.apply(x, rows);
      assertEquals(rows * c.n(), expected.length, context);
      assertArrayEquals(expected, b.apply(x, rows), context + ": outputs on " + b.kernel());
      float[][] perRow = new float[rows][];
      for (int m = 0; m < rows; m++) {
        perRow[m] = Arrays.copyOfRange(x, m * c.k(), (m + 1) * c.k());
      }
      float[][] outRows = b.apply(perRow);
      for (int m = 0; m < rows; m++) {
        assertArrayEquals(
            Arrays.copyOfRange(expected, m * c.n(), (m + 1) * c.n()),
            outRows[m],
            context + ": output row " + m);
      }
      assertEquals(0, b.apply(new float[0], 0).length, context + ": zero rows");
      assertEquals(0, b.apply(new float[0][]).length, context + ": zero rows (per-row call)");
    }
  }

  /** A JSON value from its text, such as {@code "group"} (with the quotes) or {@code true}. */
  static JsonNode parseJson(String text) {
    try {
      return JSON.readTree(text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Reads a JSON object file, lets {@code edit} change it, and writes it back. */
  static void editJson(Path file, Consumer<ObjectNode> edit) {
    try {
      ObjectNode root = (ObjectNode) JSON.readTree(file.toFile());
      edit.accept(root);
      JSON.writeValue(file.toFile(), root);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The {@code weights} object of config group {@code group_0} of a compressed-tensors config. */
  static ObjectNode ctWeights(ObjectNode config) {
    return (ObjectNode)
        config.get("quantization_config").get("config_groups").get("group_0").get("weights");
  }

  private record Raw(SafetensorsDType dtype, long[] shape, byte[] data) {}

  /**
   * Rewrites a safetensors file: the tensors named in {@code drop} are removed, every other one is
   * copied byte for byte, then {@code add} adds tensors (a replaced tensor is dropped and added).
   */
  static void rewrite(Path file, Set<String> drop, Consumer<SafetensorsWriter> add) {
    Map<String, Raw> kept = new LinkedHashMap<>();
    Map<String, String> metadata;
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      metadata = Map.copyOf(f.metadata());
      for (String name : f.names()) {
        if (!drop.contains(name)) {
          TensorView t = f.tensor(name);
          kept.put(name, new Raw(t.dtype(), t.shape(), t.data().toArray(ValueLayout.JAVA_BYTE)));
        }
      }
    }
    SafetensorsWriter w = new SafetensorsWriter();
    metadata.forEach(w::metadata);
    kept.forEach((name, t) -> w.add(name, t.dtype(), t.shape(), t.data()));
    add.accept(w);
    w.write(file);
  }

  /** The I32 tensor {@code name} of a safetensors file. */
  static int[] readInts(Path file, String name) {
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      return f.tensor(name).toIntArray();
    }
  }

  /** A tensor's shape. */
  static long[] shapeOf(Path file, String name) {
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      return f.tensor(name).shape();
    }
  }

  /** A tensor's dtype. */
  static SafetensorsDType dtypeOf(Path file, String name) {
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      return f.tensor(name).dtype();
    }
  }
}
