package io.q4spark.kernels.format;

import static io.q4spark.kernels.format.CheckpointFixtures.assertSameLayer;
import static io.q4spark.kernels.format.CheckpointFixtures.assertSameOutputs;
import static io.q4spark.kernels.format.CheckpointFixtures.ctWeights;
import static io.q4spark.kernels.format.CheckpointFixtures.dtypeOf;
import static io.q4spark.kernels.format.CheckpointFixtures.editJson;
import static io.q4spark.kernels.format.CheckpointFixtures.quantize;
import static io.q4spark.kernels.format.CheckpointFixtures.readInts;
import static io.q4spark.kernels.format.CheckpointFixtures.shapeOf;
import static io.q4spark.kernels.format.CheckpointFixtures.w4a16;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.format.CheckpointFixtures.Quantized;
import io.q4spark.kernels.format.CheckpointFixtures.Spec;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * compressed-tensors checkpoints written by {@link CompressedTensorsCheckpoint#write} and read
 * back: the codes, scales, zero points, g_idx and bias come back exactly, the tensors in the file
 * have the documented names, dtypes and shapes, and the layer computes the same outputs as before.
 */
class CompressedTensorsCheckpointTest {
  /** Base of the per-case seeds; each case prints the seed it used. */
  private static final long SEED = 0x5EED_C7L;

  /** Row counts from the shapes that break kernels (STYLE.md), cycled over the cases. */
  private static final int[] ROWS = {1, 2, 3, 7, 13, 17, 33};

  private static final String LAYER = "model.layers.0.mlp.down_proj";

  @TempDir Path dir;

  private static Random seeded(long seed, Object what) {
    System.out.println("seed " + seed + ": " + what);
    return new Random(seed);
  }

  private static QuantizationArgs argsOf(Spec s) {
    return new QuantizationArgs(s.scheme(), s.symmetric(), s.groupSize(), s.actOrder(), s.dtype());
  }

  /** K, N, G: every Triton group size, then K = 8 * odd with a group size dividing it. */
  private static final int[][] SHAPES = {
    {296, 24, -1}, // K = 8 * 37, one group over K
    {96, 136, 32},
    {192, 8, 64},
    {384, 1008, 128}, // N = 1000 + 8
    {768, 24, 256},
    {8, 8, -1}, // the smallest layer: one word
    {72, 8, 8}, // K = 8 * 9
    {120, 136, 24}, // K = 8 * 15
    {504, 24, 56}, // K = 8 * 63
  };

  static Stream<Arguments> w4a16Cases() {
    List<Arguments> cases = new ArrayList<>();
    int i = 0;
    for (boolean sym : new boolean[] {true, false}) {
      for (int[] s : SHAPES) {
        DType dtype = DType.values()[i % DType.values().length];
        Spec spec =
            new Spec(LAYER, QuantScheme.W4A16, s[0], s[1], s[2], sym, false, i % 2 == 0, dtype);
        cases.add(Arguments.of(spec, SEED + i, ROWS[i % ROWS.length]));
        i++;
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} seed {1} rows {2}")
  @MethodSource("w4a16Cases")
  void w4a16RoundTrip(Spec spec, long seed, int rows) {
    Random r = seeded(seed, spec);
    Quantized q = quantize(spec, r);
    QuantizationArgs args = argsOf(spec);
    CompressedTensorsCheckpoint.write(dir, args, List.of(q.layer()), 1);

    try (CompressedTensorsCheckpoint ckpt = CompressedTensorsCheckpoint.open(dir)) {
      assertEquals(args, ckpt.args(), "config.json read back");
      assertEquals(List.of(LAYER), ckpt.layers());
      QuantizedLinear back = ckpt.layer(LAYER);
      String ctx = spec + " seed " + seed;
      assertSameLayer(q, back, spec.dtype(), ctx);
      assertSameOutputs(q.layer(), back, rows, r, ctx);
    }
  }

  @Test
  void w4a16FileHoldsTheDocumentedTensors() throws IOException {
    // K = 256, N = 24, G = 64, asymmetric: every W4A16 tensor is present.
    Spec spec = new Spec(LAYER, QuantScheme.W4A16, 256, 24, 64, false, false, true, DType.BF16);
    Quantized q = quantize(spec, seeded(SEED, spec));
    CompressedTensorsCheckpoint.write(dir, argsOf(spec), List.of(q.layer()), 1);
    Path file = dir.resolve("model.safetensors");
    String p = LAYER + ".";

    assertEquals(SafetensorsDType.I32, dtypeOf(file, p + "weight_packed"));
    assertArrayEquals(new long[] {24, 32}, shapeOf(file, p + "weight_packed"), "[N, K/8]");
    assertArrayEquals(
        PackedInt4Matrix.fromCodes(Int4Layout.N_K8, 256, 24, q.codes()).words(),
        readInts(file, p + "weight_packed"));
    assertEquals(SafetensorsDType.BF16, dtypeOf(file, p + "weight_scale"));
    assertArrayEquals(new long[] {24, 4}, shapeOf(file, p + "weight_scale"), "[N, K/G]");
    assertEquals(SafetensorsDType.I32, dtypeOf(file, p + "weight_zero_point"));
    assertArrayEquals(new long[] {3, 4}, shapeOf(file, p + "weight_zero_point"), "[N/8, K/G]");
    assertArrayEquals(
        PackedInt4Matrix.fromCodes(Int4Layout.N8_K, 4, 24, q.zeros()).words(),
        readInts(file, p + "weight_zero_point"));
    assertEquals(SafetensorsDType.I64, dtypeOf(file, p + "weight_shape"));
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertArrayEquals(new long[] {24, 256}, f.tensor(p + "weight_shape").toLongArray());
      assertFalse(f.contains(p + "weight_g_idx"), "no g_idx without act-order");
      assertEquals(SafetensorsDType.BF16, f.tensor(p + "bias").dtype());
    }

    JsonNode config = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
    JsonNode qc = config.get("quantization_config");
    assertEquals("compressed-tensors", qc.get("quant_method").asText());
    assertEquals("pack-quantized", qc.get("format").asText());
    assertEquals("bfloat16", config.get("torch_dtype").asText());
    JsonNode w = qc.get("config_groups").get("group_0").get("weights");
    assertEquals(4, w.get("num_bits").asInt());
    assertFalse(w.get("symmetric").asBoolean());
    assertEquals("group", w.get("strategy").asText());
    assertEquals(64, w.get("group_size").asInt());
  }

  static Stream<Arguments> actOrderCases() {
    return Stream.of(
        Arguments.of(true, 128, 24, 32, DType.F16),
        Arguments.of(false, 128, 24, 32, DType.BF16),
        Arguments.of(true, 256, 136, 64, DType.F32),
        Arguments.of(false, 384, 8, 128, DType.F16));
  }

  @ParameterizedTest(name = "sym={0} K={1} N={2} G={3} {4}")
  @MethodSource("actOrderCases")
  void actOrderRoundTrip(boolean sym, int k, int n, int g, DType dtype) {
    long seed = SEED + 100 + k + n + g + (sym ? 1 : 0);
    Spec spec = new Spec(LAYER, QuantScheme.W4A16, k, n, g, sym, true, true, dtype);
    Random r = seeded(seed, spec);
    Quantized q = quantize(spec, r);
    CompressedTensorsCheckpoint.write(dir, argsOf(spec), List.of(q.layer()), 1);

    assertArrayEquals(
        q.gIdx(), readInts(dir.resolve("model.safetensors"), LAYER + ".weight_g_idx"), "file");
    try (CompressedTensorsCheckpoint ckpt = CompressedTensorsCheckpoint.open(dir)) {
      assertTrue(ckpt.args().actOrder());
      QuantizedLinear back = ckpt.layer(LAYER);
      String ctx = spec + " seed " + seed;
      assertSameLayer(q, back, dtype, ctx);
      assertSameOutputs(q.layer(), back, 5, r, ctx);
    }
  }

  @Test
  void actOrderWithTheDefaultGIdxReadsAsPlainGroups() {
    // A checkpoint with actorder "group" whose g_idx is k / G computes what a plain one does; the
    // reader drops the map so kernels without act-order can run it.
    Spec spec = w4a16(LAYER, 128, 24, 32, true, DType.F16);
    Quantized q = quantize(spec, seeded(SEED, spec));
    QuantizationArgs args = new QuantizationArgs(QuantScheme.W4A16, true, 32, true, DType.F16);
    CompressedTensorsCheckpoint.write(dir, args, List.of(q.layer()), 1);
    int[] gIdx = readInts(dir.resolve("model.safetensors"), LAYER + ".weight_g_idx");
    for (int k = 0; k < gIdx.length; k++) {
      assertEquals(k / 32, gIdx[k], "written g_idx[" + k + "]");
    }
    try (CompressedTensorsCheckpoint ckpt = CompressedTensorsCheckpoint.open(dir)) {
      QuantizedLinear back = ckpt.layer(LAYER);
      assertFalse(back.config().hasGIdx());
      assertNull(back.gIdx());
      assertSameLayer(q, back, DType.F16, spec.toString());
    }
  }

  @ParameterizedTest(name = "actorder {0}")
  @ValueSource(strings = {"\"group\"", "\"dynamic\"", "\"GROUP\"", "true"})
  void actOrderSpellingsThatMeanGroupReadTheGIdx(String actorder) {
    Spec spec = new Spec(LAYER, QuantScheme.W4A16, 128, 24, 32, true, true, false, DType.F16);
    Random r = seeded(SEED + 7, spec);
    Quantized q = quantize(spec, r);
    CompressedTensorsCheckpoint.write(dir, argsOf(spec), List.of(q.layer()), 1);
    editJson(
        dir.resolve("config.json"),
        c -> ctWeights(c).set("actorder", CheckpointFixtures.parseJson(actorder)));
    try (CompressedTensorsCheckpoint ckpt = CompressedTensorsCheckpoint.open(dir)) {
      assertTrue(ckpt.args().actOrder(), actorder);
      assertSameLayer(q, ckpt.layer(LAYER), DType.F16, "actorder " + actorder);
    }
  }

  @ParameterizedTest(name = "actorder {0}")
  @ValueSource(strings = {"\"weight\"", "\"static\"", "false", "null"})
  void actOrderSpellingsWithoutGroupsIgnoreTheGIdx(String actorder) {
    // "weight" act-order only reordered the weight while quantizing: groups stay k / G.
    Spec spec = w4a16(LAYER, 128, 24, 32, false, DType.BF16);
    Quantized q = quantize(spec, seeded(SEED + 8, spec));
    CompressedTensorsCheckpoint.write(dir, argsOf(spec), List.of(q.layer()), 1);
    editJson(
        dir.resolve("config.json"),
        c -> ctWeights(c).set("actorder", CheckpointFixtures.parseJson(actorder)));
    try (CompressedTensorsCheckpoint ckpt = CompressedTensorsCheckpoint.open(dir)) {
      assertFalse(ckpt.args().actOrder(), actorder);
      assertSameLayer(q, ckpt.layer(LAYER), DType.BF16, "actorder " + actorder);
    }
  }

  static Stream<Arguments> constantCases() {
    List<Arguments> cases = new ArrayList<>();
    for (int fill : new int[] {0, 15}) {
      for (boolean sym : new boolean[] {true, false}) {
        cases.add(Arguments.of(fill, sym));
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "every nibble {0}, sym={1}")
  @MethodSource("constantCases")
  void allZeroAndAllFifteenNibbles(int fill, boolean sym) {
    int k = 128;
    int n = 24;
    int g = 32;
    Spec spec = new Spec(LAYER, QuantScheme.W4A16, k, n, g, sym, false, true, DType.F16);
    Random r = seeded(SEED + 20 + fill, spec + " fill " + fill);
    byte[] codes = new byte[k * n];
    Arrays.fill(codes, (byte) fill);
    byte[] zeros = null;
    if (!sym) {
      zeros = new byte[k / g * n];
      Arrays.fill(zeros, (byte) fill);
    }
    Quantized q = CheckpointFixtures.fromCodes(spec, codes, zeros, r);
    CompressedTensorsCheckpoint.write(dir, argsOf(spec), List.of(q.layer()), 1);

    Path file = dir.resolve("model.safetensors");
    int word = fill == 0 ? 0 : 0xFFFFFFFF;
    for (int w : readInts(file, LAYER + ".weight_packed")) {
      assertEquals(word, w, "weight_packed word");
    }
    if (!sym) {
      for (int w : readInts(file, LAYER + ".weight_zero_point")) {
        assertEquals(word, w, "weight_zero_point word");
      }
    }
    try (CompressedTensorsCheckpoint ckpt = CompressedTensorsCheckpoint.open(dir)) {
      QuantizedLinear back = ckpt.layer(LAYER);
      assertSameLayer(q, back, DType.F16, spec + " fill " + fill);
      assertSameOutputs(q.layer(), back, 3, r, spec + " fill " + fill);
    }
  }

  /** Three layers of different shapes, in the order a model lists them. */
  private static List<Quantized> threeLayers(boolean sym, Random r) {
    return List.of(
        quantize(w4a16("model.layers.0.self_attn.q_proj", 128, 128, 32, sym, DType.F16), r),
        quantize(w4a16("model.layers.0.mlp.down_proj", 256, 64, 32, sym, DType.F16), r),
        quantize(w4a16("model.layers.1.mlp.up_proj", 64, 256, 32, sym, DType.F16), r));
  }

  @Test
  void multipleLayersInOneFile() {
    Random r = seeded(SEED + 30, "three layers, one file");
    List<Quantized> layers = threeLayers(false, r);
    QuantizationArgs args = new QuantizationArgs(QuantScheme.W4A16, false, 32, false, DType.F16);
    CompressedTensorsCheckpoint.write(dir, args, layers.stream().map(Quantized::layer).toList(), 1);

    assertFalse(Files.exists(dir.resolve(SafetensorsCheckpoint.INDEX_FILE)));
    try (CompressedTensorsCheckpoint ckpt = CompressedTensorsCheckpoint.open(dir)) {
      assertEquals(
          List.of(
              "model.layers.0.mlp.down_proj",
              "model.layers.0.self_attn.q_proj",
              "model.layers.1.mlp.up_proj"),
          ckpt.layers(),
          "sorted layer names");
      for (Quantized q : layers) {
        String name = q.layer().config().layer();
        QuantizedLinear back = ckpt.layer(name);
        assertSameLayer(q, back, DType.F16, name);
        assertSameOutputs(q.layer(), back, 2, r, name);
      }
    }
  }

  @ParameterizedTest(name = "{0} shards")
  @ValueSource(ints = {2, 3})
  void shardedCheckpointHasAnIndexAndReadsBack(int shards) throws IOException {
    Random r = seeded(SEED + 40 + shards, shards + " shards");
    List<Quantized> layers = threeLayers(true, r);
    QuantizationArgs args = new QuantizationArgs(QuantScheme.W4A16, true, 32, false, DType.F16);
    CompressedTensorsCheckpoint.write(
        dir, args, layers.stream().map(Quantized::layer).toList(), shards);

    Path index = dir.resolve(SafetensorsCheckpoint.INDEX_FILE);
    assertTrue(Files.isRegularFile(index), "index written");
    assertFalse(Files.exists(dir.resolve("model.safetensors")), "no unsharded file");
    JsonNode weightMap = new ObjectMapper().readTree(index.toFile()).get("weight_map");
    List<String> shardFiles = new ArrayList<>();
    for (int i = 1; i <= shards; i++) {
      String shard = String.format("model-%05d-of-%05d.safetensors", i, shards);
      assertTrue(Files.isRegularFile(dir.resolve(shard)), shard);
      shardFiles.add(shard);
    }
    // Every tensor of a layer sits in the shard the index names, and every shard holds a layer.
    for (int i = 0; i < layers.size(); i++) {
      String prefix = layers.get(i).layer().config().layer() + ".";
      String shard = shardFiles.get(i * shards / layers.size());
      for (String t : List.of("weight_packed", "weight_scale", "weight_shape")) {
        assertEquals(shard, weightMap.get(prefix + t).asText(), prefix + t);
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(shard))) {
          assertTrue(f.contains(prefix + t), shard + " holds " + prefix + t);
        }
      }
    }
    try (CompressedTensorsCheckpoint ckpt = CompressedTensorsCheckpoint.open(dir)) {
      assertEquals(3, ckpt.layers().size());
      for (Quantized q : layers) {
        String name = q.layer().config().layer();
        assertSameLayer(q, ckpt.layer(name), DType.F16, name + " from " + shards + " shards");
      }
    }
  }

  static Stream<Arguments> w4a8Cases() {
    return Stream.of(
        Arguments.of(256, 24, -1, DType.F16, 1),
        Arguments.of(192, 136, 64, DType.BF16, 7),
        Arguments.of(128, 8, 32, DType.F16, 13),
        Arguments.of(120, 1008, 24, DType.F32, 2));
  }

  @ParameterizedTest(name = "K={0} N={1} G={2} {3} rows {4}")
  @MethodSource("w4a8Cases")
  void w4a8RoundTrip(int k, int n, int g, DType dtype, int rows) {
    long seed = SEED + 50 + k + n;
    Spec spec = new Spec(LAYER, QuantScheme.W4A8, k, n, g, true, false, n == 24, dtype);
    Random r = seeded(seed, spec);
    Quantized q = quantize(spec, r);
    CompressedTensorsCheckpoint.write(dir, argsOf(spec), List.of(q.layer()), 1);

    // The int4 weight is stored unpacked, one signed value per I8 byte, as [N, K].
    Path file = dir.resolve("model.safetensors");
    assertEquals(SafetensorsDType.I8, dtypeOf(file, LAYER + ".weight"));
    assertArrayEquals(new long[] {n, k}, shapeOf(file, LAYER + ".weight"));
    int groups = g == -1 ? 1 : k / g;
    assertArrayEquals(new long[] {n, groups}, shapeOf(file, LAYER + ".weight_scale"));
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertFalse(f.contains(LAYER + ".weight_packed"));
      byte[] values = f.tensor(LAYER + ".weight").data().toArray(ValueLayout.JAVA_BYTE);
      for (int nn = 0; nn < n; nn++) {
        for (int kk = 0; kk < k; kk++) {
          assertEquals(
              q.codes()[kk * n + nn] - 8, values[nn * k + kk], "weight[" + nn + ", " + kk + "]");
        }
      }
    }

    try (CompressedTensorsCheckpoint ckpt = CompressedTensorsCheckpoint.open(dir)) {
      assertEquals(QuantScheme.W4A8, ckpt.args().scheme());
      assertEquals(List.of(LAYER), ckpt.layers());
      QuantizedLinear back = ckpt.layer(LAYER);
      assertEquals(g == -1 ? k : g, back.config().groupSize(), "-1 resolves to K");
      String ctx = spec + " seed " + seed;
      assertSameLayer(q, back, dtype, ctx);
      assertSameOutputs(q.layer(), back, rows, r, ctx);
    }
  }

  @Test
  void ignoredLayersAreNotListed() {
    Random r = seeded(SEED + 60, "ignore");
    List<Quantized> layers = threeLayers(true, r);
    QuantizationArgs args = new QuantizationArgs(QuantScheme.W4A16, true, 32, false, DType.F16);
    CompressedTensorsCheckpoint.write(dir, args, layers.stream().map(Quantized::layer).toList(), 1);
    editJson(
        dir.resolve("config.json"),
        c -> {
          ArrayNode ignore = ((ObjectNode) c.get("quantization_config")).putArray("ignore");
          // A regex matches from the start of the name (Python's re.match); a plain name must
          // be equal, so "model.layers.1.mlp.up" ignores nothing.
          ignore.add("re:model\\.layers\\.0\\.self_attn");
          ignore.add("model.layers.1.mlp.up");
          ignore.add("lm_head");
        });
    try (CompressedTensorsCheckpoint ckpt = CompressedTensorsCheckpoint.open(dir)) {
      assertEquals(
          List.of("model.layers.0.mlp.down_proj", "model.layers.1.mlp.up_proj"), ckpt.layers());
    }
  }
}
