package io.q4spark.kernels.format;

import static io.q4spark.kernels.format.CheckpointFixtures.assertSameLayer;
import static io.q4spark.kernels.format.CheckpointFixtures.assertSameOutputs;
import static io.q4spark.kernels.format.CheckpointFixtures.dtypeOf;
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
import io.q4spark.kernels.DType;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.format.CheckpointFixtures.Quantized;
import io.q4spark.kernels.format.CheckpointFixtures.Spec;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.io.IOException;
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
 * GPTQ checkpoints (v1 {@code gptq} and v2 {@code gptq_v2}) written by {@link GptqCheckpoint#write}
 * and read back: exact codes, scales, zero points and g_idx; the stored qzeros follow each
 * version's convention (v1 stores zero - 1 mod 16); outputs equal the original layer's and the same
 * layer read from compressed-tensors.
 */
class GptqCheckpointTest {
  /** Base of the per-case seeds; each case prints the seed it used. */
  private static final long SEED = 0x6_9770L;

  private static final int[] ROWS = {1, 2, 3, 7, 13, 17, 33};

  private static final String LAYER = "model.layers.3.mlp.down_proj";

  @TempDir Path dir;

  private static Random seeded(long seed, Object what) {
    System.out.println("seed " + seed + ": " + what);
    return new Random(seed);
  }

  private static QuantizationArgs argsOf(Spec s) {
    return new QuantizationArgs(s.scheme(), s.symmetric(), s.groupSize(), s.actOrder(), s.dtype());
  }

  private static final int[][] SHAPES = {
    {296, 24, -1}, // K = 8 * 37
    {96, 136, 32},
    {192, 8, 64},
    {384, 1008, 128}, // N = 1000 + 8
    {768, 24, 256},
    {120, 136, 24}, // K = 8 * 15
  };

  static Stream<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    int i = 0;
    for (boolean v2 : new boolean[] {false, true}) {
      for (boolean sym : new boolean[] {true, false}) {
        for (int[] s : SHAPES) {
          DType dtype = DType.values()[i % DType.values().length];
          Spec spec =
              new Spec(LAYER, QuantScheme.W4A16, s[0], s[1], s[2], sym, false, i % 3 == 0, dtype);
          cases.add(Arguments.of(spec, v2, SEED + i, ROWS[i % ROWS.length]));
          i++;
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} v2={1} seed {2} rows {3}")
  @MethodSource("cases")
  void roundTrip(Spec spec, boolean v2, long seed, int rows) {
    Random r = seeded(seed, spec + (v2 ? " gptq_v2" : " gptq"));
    Quantized q = quantize(spec, r);
    GptqCheckpoint.write(dir, argsOf(spec), v2, List.of(q.layer()));

    try (GptqCheckpoint ckpt = GptqCheckpoint.open(dir)) {
      assertEquals(new GptqCheckpoint.Config(argsOf(spec), v2), ckpt.config());
      assertEquals(List.of(LAYER), ckpt.layers());
      QuantizedLinear back = ckpt.layer(LAYER);
      String ctx = spec + " v2=" + v2 + " seed " + seed;
      assertSameLayer(q, back, spec.dtype(), ctx);
      assertSameOutputs(q.layer(), back, rows, r, ctx);
    }
  }

  @Test
  void fileHoldsTheDocumentedTensors() throws IOException {
    Spec spec = w4a16(LAYER, 256, 24, 64, false, DType.F16);
    Quantized q = quantize(spec, seeded(SEED, spec));
    GptqCheckpoint.write(dir, argsOf(spec), true, List.of(q.layer()));
    Path file = dir.resolve("model.safetensors");
    String p = LAYER + ".";

    assertEquals(SafetensorsDType.I32, dtypeOf(file, p + "qweight"));
    assertArrayEquals(new long[] {32, 24}, shapeOf(file, p + "qweight"), "[K/8, N]");
    assertArrayEquals(
        PackedInt4Matrix.fromCodes(Int4Layout.K8_N, 256, 24, q.codes()).words(),
        readInts(file, p + "qweight"));
    assertEquals(SafetensorsDType.F16, dtypeOf(file, p + "scales"));
    assertArrayEquals(new long[] {4, 24}, shapeOf(file, p + "scales"), "[K/G, N]");
    assertArrayEquals(new long[] {4, 3}, shapeOf(file, p + "qzeros"), "[K/G, N/8]");
    assertArrayEquals(new long[] {256}, shapeOf(file, p + "g_idx"), "[K]");
    int[] gIdx = readInts(file, p + "g_idx");
    for (int k = 0; k < gIdx.length; k++) {
      assertEquals(k / 64, gIdx[k], "default g_idx[" + k + "] = k / G");
    }

    ObjectMapper json = new ObjectMapper();
    JsonNode qc = json.readTree(dir.resolve(GptqCheckpoint.QUANTIZE_CONFIG).toFile());
    assertEquals(4, qc.get("bits").asInt());
    assertEquals(64, qc.get("group_size").asInt());
    assertFalse(qc.get("desc_act").asBoolean());
    assertFalse(qc.get("sym").asBoolean());
    assertEquals("gptq_v2", qc.get("checkpoint_format").asText());
    JsonNode config = json.readTree(dir.resolve("config.json").toFile());
    assertEquals("gptq", config.get("quantization_config").get("quant_method").asText());
    assertEquals("float16", config.get("torch_dtype").asText());
  }

  /** The stored zero of (g, n) in a [K/G, N/8] qzeros tensor. */
  private static int storedZero(int[] qzeros, int n, int g, int col) {
    return (qzeros[g * (n / 8) + col / 8] >>> 4 * (col % 8)) & 0xF;
  }

  @Test
  void v1AsymmetricStoresZeroMinusOneModSixteen() {
    int k = 64;
    int n = 16;
    int g = 32;
    Spec spec = new Spec(LAYER, QuantScheme.W4A16, k, n, g, false, false, false, DType.F16);
    Random r = seeded(SEED + 1, spec);
    byte[] codes = new byte[k * n];
    for (int i = 0; i < codes.length; i++) {
      codes[i] = (byte) r.nextInt(16);
    }
    // True zeros 0, 1, ..., 15 across the 16 outputs of group 0, reversed in group 1.
    byte[] zeros = new byte[2 * n];
    for (int col = 0; col < n; col++) {
      zeros[col] = (byte) col;
      zeros[n + col] = (byte) (15 - col);
    }
    Quantized q = CheckpointFixtures.fromCodes(spec, codes, zeros, r);
    GptqCheckpoint.write(dir, argsOf(spec), false, List.of(q.layer()));

    int[] qzeros = readInts(dir.resolve("model.safetensors"), LAYER + ".qzeros");
    // Group 0, outputs 0..7: true zeros 0..7 are stored as 15, 0, 1, ..., 6.
    assertEquals(0x6543210F, qzeros[0]);
    assertEquals(0xEDCBA987, qzeros[1]);
    for (int grp = 0; grp < 2; grp++) {
      for (int col = 0; col < n; col++) {
        int trueZero = zeros[grp * n + col];
        assertEquals(
            (trueZero - 1) & 0xF,
            storedZero(qzeros, n, grp, col),
            "stored zero of group " + grp + ", output " + col);
      }
    }
    try (GptqCheckpoint ckpt = GptqCheckpoint.open(dir)) {
      assertFalse(ckpt.config().v2());
      QuantizedLinear back = ckpt.layer(LAYER);
      assertSameLayer(q, back, DType.F16, "v1 asymmetric");
      assertSameOutputs(q.layer(), back, 3, r, "v1 asymmetric");
    }
  }

  @Test
  void v2AsymmetricStoresTheTrueZero() {
    Spec spec = w4a16(LAYER, 128, 24, 32, false, DType.BF16);
    Random r = seeded(SEED + 2, spec);
    Quantized q = quantize(spec, r);
    GptqCheckpoint.write(dir, argsOf(spec), true, List.of(q.layer()));
    assertArrayEquals(
        PackedInt4Matrix.fromCodes(Int4Layout.K_N8, 4, 24, q.zeros()).words(),
        readInts(dir.resolve("model.safetensors"), LAYER + ".qzeros"));
    try (GptqCheckpoint ckpt = GptqCheckpoint.open(dir)) {
      assertTrue(ckpt.config().v2());
      assertSameLayer(q, ckpt.layer(LAYER), DType.BF16, "v2 asymmetric");
    }
  }

  @ParameterizedTest(name = "v2={0}")
  @ValueSource(booleans = {false, true})
  void symmetricFilesHoldTheConventionalQzeros(boolean v2) {
    // Symmetric GPTQ has no zero points, but writers store 8 - 1 (v1) or 8 (v2) in every nibble;
    // readers ignore them (uint4b8 measures codes from 8).
    Spec spec = w4a16(LAYER, 256, 136, 128, true, DType.F16);
    Random r = seeded(SEED + 3, spec);
    Quantized q = quantize(spec, r);
    GptqCheckpoint.write(dir, argsOf(spec), v2, List.of(q.layer()));
    int[] qzeros = readInts(dir.resolve("model.safetensors"), LAYER + ".qzeros");
    assertEquals(2 * 136 / 8, qzeros.length);
    for (int w : qzeros) {
      assertEquals(v2 ? 0x88888888 : 0x77777777, w);
    }
    try (GptqCheckpoint ckpt = GptqCheckpoint.open(dir)) {
      QuantizedLinear back = ckpt.layer(LAYER);
      assertNull(back.zeros());
      assertSameLayer(q, back, DType.F16, "symmetric v2=" + v2);
    }
  }

  @ParameterizedTest(name = "every nibble {0}")
  @ValueSource(ints = {0, 15})
  void allZeroAndAllFifteenNibbles(int fill) {
    // Asymmetric v1 with zero codes equal to the codes: qweight words are all 0 or all 1 bits, and
    // the stored zeros (fill - 1 mod 16) are 0xFFFFFFFF or 0xEEEEEEEE.
    int k = 64;
    int n = 24;
    Spec spec = new Spec(LAYER, QuantScheme.W4A16, k, n, 32, false, false, true, DType.F16);
    Random r = seeded(SEED + 4 + fill, spec + " fill " + fill);
    byte[] codes = new byte[k * n];
    Arrays.fill(codes, (byte) fill);
    byte[] zeros = new byte[2 * n];
    Arrays.fill(zeros, (byte) fill);
    Quantized q = CheckpointFixtures.fromCodes(spec, codes, zeros, r);
    GptqCheckpoint.write(dir, argsOf(spec), false, List.of(q.layer()));

    Path file = dir.resolve("model.safetensors");
    for (int w : readInts(file, LAYER + ".qweight")) {
      assertEquals(fill == 0 ? 0 : 0xFFFFFFFF, w, "qweight word");
    }
    for (int w : readInts(file, LAYER + ".qzeros")) {
      assertEquals(fill == 0 ? 0xFFFFFFFF : 0xEEEEEEEE, w, "qzeros word");
    }
    try (GptqCheckpoint ckpt = GptqCheckpoint.open(dir)) {
      QuantizedLinear back = ckpt.layer(LAYER);
      assertSameLayer(q, back, DType.F16, "fill " + fill);
      assertSameOutputs(q.layer(), back, 2, r, "fill " + fill);
    }
  }

  static Stream<Arguments> descActCases() {
    return Stream.of(
        Arguments.of(false, true, 128, 24, 32, DType.F16),
        Arguments.of(true, true, 256, 136, 64, DType.BF16),
        Arguments.of(false, false, 256, 24, 32, DType.F32),
        Arguments.of(true, false, 384, 8, 128, DType.F16));
  }

  @ParameterizedTest(name = "v2={0} sym={1} K={2} N={3} G={4} {5}")
  @MethodSource("descActCases")
  void descActRoundTrip(boolean v2, boolean sym, int k, int n, int g, DType dtype) {
    long seed = SEED + 10 + k + n + (v2 ? 1 : 0);
    Spec spec = new Spec(LAYER, QuantScheme.W4A16, k, n, g, sym, true, true, dtype);
    Random r = seeded(seed, spec);
    Quantized q = quantize(spec, r);
    GptqCheckpoint.write(dir, argsOf(spec), v2, List.of(q.layer()));
    assertArrayEquals(q.gIdx(), readInts(dir.resolve("model.safetensors"), LAYER + ".g_idx"));

    try (GptqCheckpoint ckpt = GptqCheckpoint.open(dir)) {
      assertTrue(ckpt.config().args().actOrder());
      QuantizedLinear back = ckpt.layer(LAYER);
      String ctx = spec + " v2=" + v2 + " seed " + seed;
      assertSameLayer(q, back, dtype, ctx);
      assertSameOutputs(q.layer(), back, 4, r, ctx);
    }
  }

  @Test
  void withoutDescActTheStoredGIdxIsIgnored() {
    // vLLM uses g_idx only with desc_act; a file without it still stores k / G.
    Spec spec = w4a16(LAYER, 128, 24, 32, true, DType.F16);
    Quantized q = quantize(spec, seeded(SEED + 5, spec));
    GptqCheckpoint.write(dir, argsOf(spec), false, List.of(q.layer()));
    try (GptqCheckpoint ckpt = GptqCheckpoint.open(dir)) {
      QuantizedLinear back = ckpt.layer(LAYER);
      assertFalse(back.config().hasGIdx());
      assertNull(back.gIdx());
    }
  }

  @Test
  void configInConfigJsonAlone() throws IOException {
    // Hugging Face GPTQ models may carry the settings only in config.json's quantization_config.
    Spec spec = w4a16(LAYER, 128, 24, 32, false, DType.BF16);
    Random r = seeded(SEED + 6, spec);
    Quantized q = quantize(spec, r);
    GptqCheckpoint.write(dir, argsOf(spec), false, List.of(q.layer()));
    Files.delete(dir.resolve(GptqCheckpoint.QUANTIZE_CONFIG));
    try (GptqCheckpoint ckpt = GptqCheckpoint.open(dir)) {
      assertEquals(new GptqCheckpoint.Config(argsOf(spec), false), ckpt.config());
      assertSameLayer(q, ckpt.layer(LAYER), DType.BF16, "config.json only");
    }
  }

  @Test
  void multipleLayers() {
    Random r = seeded(SEED + 7, "three layers");
    List<Quantized> layers =
        List.of(
            quantize(w4a16("model.layers.0.self_attn.o_proj", 128, 128, 64, false, DType.F16), r),
            quantize(w4a16("model.layers.0.mlp.down_proj", 256, 64, 64, false, DType.F16), r),
            quantize(w4a16("lm_head", 64, 1008, 64, false, DType.F16), r));
    QuantizationArgs args = new QuantizationArgs(QuantScheme.W4A16, false, 64, false, DType.F16);
    GptqCheckpoint.write(dir, args, true, layers.stream().map(Quantized::layer).toList());
    try (GptqCheckpoint ckpt = GptqCheckpoint.open(dir)) {
      assertEquals(
          List.of("lm_head", "model.layers.0.mlp.down_proj", "model.layers.0.self_attn.o_proj"),
          ckpt.layers());
      for (Quantized q : layers) {
        String name = q.layer().config().layer();
        assertSameLayer(q, ckpt.layer(name), DType.F16, name);
      }
    }
  }

  static Stream<Arguments> crossFormatCases() {
    return Stream.of(
        Arguments.of(true, -1, false, DType.F16),
        Arguments.of(false, 64, false, DType.BF16),
        Arguments.of(true, 32, true, DType.F16),
        Arguments.of(false, 128, true, DType.F32));
  }

  @ParameterizedTest(name = "sym={0} G={1} act-order={2} {3}")
  @MethodSource("crossFormatCases")
  void compressedTensorsAndGptqReadTheSameLayer(boolean sym, int g, boolean act, DType dtype)
      throws IOException {
    long seed = SEED + 20 + g + (sym ? 1 : 0);
    Spec spec = new Spec(LAYER, QuantScheme.W4A16, 256, 136, g, sym, act, true, dtype);
    Random r = seeded(seed, spec);
    Quantized q = quantize(spec, r);
    Path ct = Files.createDirectory(dir.resolve("ct"));
    Path v1 = Files.createDirectory(dir.resolve("gptq"));
    Path v2 = Files.createDirectory(dir.resolve("gptq_v2"));
    CompressedTensorsCheckpoint.write(ct, argsOf(spec), List.of(q.layer()), 1);
    GptqCheckpoint.write(v1, argsOf(spec), false, List.of(q.layer()));
    GptqCheckpoint.write(v2, argsOf(spec), true, List.of(q.layer()));
    try (CompressedTensorsCheckpoint a = CompressedTensorsCheckpoint.open(ct);
        GptqCheckpoint b = GptqCheckpoint.open(v1);
        GptqCheckpoint c = GptqCheckpoint.open(v2)) {
      QuantizedLinear fromCt = a.layer(LAYER);
      String ctx = spec + " seed " + seed;
      assertSameLayer(q, fromCt, dtype, ctx + " compressed-tensors");
      assertSameLayer(q, b.layer(LAYER), dtype, ctx + " gptq");
      assertSameLayer(q, c.layer(LAYER), dtype, ctx + " gptq_v2");
      assertSameOutputs(fromCt, b.layer(LAYER), 7, new Random(seed), ctx + " ct vs gptq");
      assertSameOutputs(q.layer(), c.layer(LAYER), 7, new Random(seed), ctx + " gptq_v2");
    }
  }
}
