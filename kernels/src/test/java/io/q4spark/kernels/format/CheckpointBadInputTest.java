package io.q4spark.kernels.format;

import static io.q4spark.kernels.format.CheckpointFixtures.ctWeights;
import static io.q4spark.kernels.format.CheckpointFixtures.editJson;
import static io.q4spark.kernels.format.CheckpointFixtures.quantize;
import static io.q4spark.kernels.format.CheckpointFixtures.rewrite;
import static io.q4spark.kernels.format.CheckpointFixtures.w4a16;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.Q4Linear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.format.CheckpointFixtures.Quantized;
import io.q4spark.kernels.format.CheckpointFixtures.Spec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * Broken checkpoints and calls: each is refused with the exception type and the message the user
 * sees, which names the layer, tensor or file with the expected and the found value. Broken files
 * are made by writing a valid checkpoint and then rewriting one tensor or one config field.
 */
class CheckpointBadInputTest {
  private static final long SEED = 0xBAD_1L;

  private static final String L = "model.layers.0.mlp.down_proj";

  /** The layer most cases break: K = 256, N = 24, G = 64, so K/G = 4 groups. */
  private static final int K = 256;

  private static final int N = 24;
  private static final int G = 64;

  @TempDir Path dir;

  private Path file() {
    return dir.resolve("model.safetensors");
  }

  private Path config() {
    return dir.resolve("config.json");
  }

  private Path quantizeConfig() {
    return dir.resolve(GptqCheckpoint.QUANTIZE_CONFIG);
  }

  private static Quantized layer(Spec spec) {
    System.out.println("seed " + SEED + ": " + spec);
    return quantize(spec, new Random(SEED));
  }

  private static QuantizationArgs argsOf(Spec s) {
    return new QuantizationArgs(s.scheme(), s.symmetric(), s.groupSize(), s.actOrder(), s.dtype());
  }

  private Quantized writeCt(Spec spec) {
    Quantized q = layer(spec);
    CompressedTensorsCheckpoint.write(dir, argsOf(spec), List.of(q.layer()), 1);
    return q;
  }

  private Quantized writeCt(boolean sym) {
    return writeCt(w4a16(L, K, N, G, sym, DType.F16));
  }

  private Quantized writeGptq(Spec spec) {
    Quantized q = layer(spec);
    GptqCheckpoint.write(dir, argsOf(spec), false, List.of(q.layer()));
    return q;
  }

  private Quantized writeGptq(boolean sym) {
    return writeGptq(w4a16(L, K, N, G, sym, DType.F16));
  }

  /** Opens the compressed-tensors checkpoint in {@link #dir} and reads layer {@link #L}. */
  private QuantizedLinear readCt() {
    try (CompressedTensorsCheckpoint c = CompressedTensorsCheckpoint.open(dir)) {
      return c.layer(L);
    }
  }

  private QuantizedLinear readGptq() {
    try (GptqCheckpoint c = GptqCheckpoint.open(dir)) {
      return c.layer(L);
    }
  }

  private static void assertMessage(
      Class<? extends Throwable> type, String expected, Executable call) {
    Throwable e = assertThrows(type, call);
    assertEquals(expected, e.getMessage());
  }

  // --- tensor shapes that disagree with the config ---------------------------------------------

  @Test
  void ctScaleShapeDisagreesWithTheGroupCount() {
    writeCt(true);
    rewrite(
        file(),
        Set.of(L + ".weight_scale"),
        w ->
            w.addFloats(
                L + ".weight_scale", SafetensorsDType.F16, new long[] {N, 3}, new float[N * 3]));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": weight_scale has shape [24, 3], expected [N, K/G] = [24, 4] for K=256, N=24,"
            + " G=64 (in "
            + file()
            + ")",
        this::readCt);
  }

  @Test
  void gptqScaleShapeDisagreesWithTheGroupCount() {
    writeGptq(true);
    rewrite(
        file(),
        Set.of(L + ".scales"),
        w -> w.addFloats(L + ".scales", SafetensorsDType.F16, new long[] {3, N}, new float[3 * N]));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": scales has shape [3, 24], expected [K/G, N] = [4, 24] for K=256, N=24, G=64 (in "
            + file()
            + ")",
        this::readGptq);
  }

  @Test
  void ctZeroPointShapeDisagreesWithN() {
    writeCt(false);
    rewrite(
        file(),
        Set.of(L + ".weight_zero_point"),
        w -> w.addInts(L + ".weight_zero_point", new long[] {4, 3}, new int[12]));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": weight_zero_point has shape [4, 3], expected [N/8, K/G] = [3, 4] for K=256, N=24,"
            + " G=64 (in "
            + file()
            + ")",
        this::readCt);
  }

  @Test
  void gptqQweightOfRankThree() {
    writeGptq(true);
    rewrite(
        file(),
        Set.of(L + ".qweight"),
        w -> w.addInts(L + ".qweight", new long[] {4, 8, N}, new int[4 * 8 * N]));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": qweight has shape [4, 8, 24] (rank 3), expected rank 2: [K/8, N] (in "
            + file()
            + ")",
        this::readGptq);
  }

  @Test
  void ctWeightPackedOfRankOne() {
    writeCt(true);
    rewrite(
        file(),
        Set.of(L + ".weight_packed"),
        w -> w.addInts(L + ".weight_packed", new long[] {N * K / 8}, new int[N * K / 8]));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": weight_packed has shape [768] (rank 1), expected rank 2: [N, K/8] (in "
            + file()
            + ")",
        this::readCt);
  }

  @Test
  void ctWeightShapeDisagreesWithWeightPacked() {
    writeCt(true);
    rewrite(
        file(),
        Set.of(L + ".weight_shape"),
        w -> w.addLongs(L + ".weight_shape", new long[] {2}, new long[] {N, 200}));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": weight_shape is [24, 200], but weight_packed [N, K/8] = [24, 32] (in "
            + file()
            + ")",
        this::readCt);
  }

  // --- tensor dtypes ---------------------------------------------------------------------------

  @Test
  void gptqQweightStoredAsF32() {
    writeGptq(true);
    rewrite(
        file(),
        Set.of(L + ".qweight"),
        w ->
            w.addFloats(
                L + ".qweight", SafetensorsDType.F32, new long[] {K / 8, N}, new float[K / 8 * N]));
    assertMessage(
        CheckpointException.class,
        "layer " + L + ": qweight has dtype F32, expected I32 (in " + file() + ")",
        this::readGptq);
  }

  @Test
  void gptqScalesStoredAsI32() {
    writeGptq(true);
    rewrite(
        file(),
        Set.of(L + ".scales"),
        w -> w.addInts(L + ".scales", new long[] {K / G, N}, new int[K / G * N]));
    assertMessage(
        CheckpointException.class,
        "layer " + L + ": scales has dtype I32, expected [F16, BF16, F32] (in " + file() + ")",
        this::readGptq);
  }

  @Test
  void ctScaleStoredAsI32() {
    writeCt(true);
    rewrite(
        file(),
        Set.of(L + ".weight_scale"),
        w -> w.addInts(L + ".weight_scale", new long[] {N, K / G}, new int[N * K / G]));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": weight_scale has dtype I32, expected [F16, BF16, F32] (in "
            + file()
            + ")",
        this::readCt);
  }

  @Test
  void w4a8WeightStoredAsI32IsReportedNotSkipped() {
    writeCt(new Spec(L, QuantScheme.W4A8, K, N, G, true, false, false, DType.F16));
    rewrite(
        file(),
        Set.of(L + ".weight"),
        w -> w.addInts(L + ".weight", new long[] {N, K}, new int[N * K]));
    assertMessage(
        CheckpointException.class,
        "layer " + L + ": weight has dtype I32, expected I8 (in " + file() + ")",
        this::readCt);
  }

  // --- group size, N and g_idx -----------------------------------------------------------------

  @Test
  void ctKNotDivisibleByTheGroupSize() {
    writeCt(w4a16(L, 96, N, 32, true, DType.F16));
    editJson(config(), c -> ctWeights(c).put("group_size", 64));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": K = 96 (from weight_packed [N, K/8] = [24, 12]) is not divisible by the config's"
            + " group size 64",
        this::readCt);
  }

  @Test
  void gptqKNotDivisibleByTheGroupSize() {
    writeGptq(w4a16(L, 96, N, 32, true, DType.F16));
    editJson(quantizeConfig(), c -> c.put("group_size", 64));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": K = 96 (from qweight [K/8, N] = [12, 24]) is not divisible by the config's group"
            + " size 64",
        this::readGptq);
  }

  @Test
  void ctAsymmetricNNotAMultipleOfEight() {
    // N = 12 can be stored symmetric (weight_packed packs K), but not with zero points.
    writeCt(w4a16(L, 64, 12, 32, true, DType.F16));
    editJson(config(), c -> ctWeights(c).put("symmetric", false));
    rewrite(
        file(), Set.of(), w -> w.addInts(L + ".weight_zero_point", new long[] {2, 2}, new int[4]));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": N = 12 is not a multiple of 8: zero points are packed 8 per int32 word along N",
        this::readCt);
  }

  @Test
  void gptqAsymmetricNNotAMultipleOfEight() throws IOException {
    // Written by hand: GPTQ's qzeros cannot hold N = 12, so no writer makes this file.
    new SafetensorsWriter()
        .addInts(L + ".qweight", new long[] {8, 12}, new int[8 * 12])
        .addFloats(L + ".scales", SafetensorsDType.F16, new long[] {2, 12}, new float[24])
        .addInts(L + ".qzeros", new long[] {2, 1}, new int[2])
        .write(file());
    Files.writeString(
        quantizeConfig(), "{\"bits\": 4, \"group_size\": 32, \"sym\": false, \"desc_act\": false}");
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": N = 12 is not a multiple of 8: asymmetric qzeros are packed 8 per int32 word along"
            + " N",
        this::readGptq);
  }

  @Test
  void ctAsymmetricConfigWithoutZeroPoints() {
    writeCt(true);
    editJson(config(), c -> ctWeights(c).put("symmetric", false));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": the config is asymmetric (symmetric: false), but tensor '"
            + L
            + ".weight_zero_point' is missing from "
            + dir,
        this::readCt);
  }

  @Test
  void ctGIdxOutOfRange() {
    Quantized q = writeCt(new Spec(L, QuantScheme.W4A16, K, N, G, true, true, false, DType.F16));
    int[] gIdx = q.gIdx().clone();
    gIdx[5] = K / G;
    rewrite(
        file(),
        Set.of(L + ".weight_g_idx"),
        w -> w.addInts(L + ".weight_g_idx", new long[] {K}, gIdx));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": g_idx[5] = 4 is out of range, expected 0..3 (K/G = 4 groups) (in "
            + dir
            + ")",
        this::readCt);
  }

  @Test
  void gptqNegativeGIdx() {
    Quantized q = writeGptq(new Spec(L, QuantScheme.W4A16, K, N, G, false, true, false, DType.F16));
    int[] gIdx = q.gIdx().clone();
    gIdx[K - 1] = -1;
    rewrite(file(), Set.of(L + ".g_idx"), w -> w.addInts(L + ".g_idx", new long[] {K}, gIdx));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": g_idx[255] = -1 is out of range, expected 0..3 (K/G = 4 groups) (in "
            + dir
            + ")",
        this::readGptq);
  }

  @Test
  void ctActOrderWithoutGIdx() {
    writeCt(new Spec(L, QuantScheme.W4A16, K, N, G, true, true, false, DType.F16));
    rewrite(file(), Set.of(L + ".weight_g_idx"), w -> {});
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": the config uses act-order (actorder: group), but tensor '"
            + L
            + ".weight_g_idx' is missing from "
            + dir,
        this::readCt);
  }

  @Test
  void gptqDescActWithoutGIdx() {
    writeGptq(new Spec(L, QuantScheme.W4A16, K, N, G, true, true, false, DType.F16));
    rewrite(file(), Set.of(L + ".g_idx"), w -> {});
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": desc_act is true (act-order), but tensor '"
            + L
            + ".g_idx' is missing from "
            + dir,
        this::readGptq);
  }

  // --- scale values ----------------------------------------------------------------------------

  /** Rewrites CT weight_scale [N, K/G] with {@code value} at output n, group g. */
  private void ctScaleAt(int n, int g, float value) {
    float[] s;
    try (SafetensorsFile f = SafetensorsFile.open(file())) {
      s = f.tensor(L + ".weight_scale").toFloatArray();
    }
    s[n * (K / G) + g] = value;
    rewrite(
        file(),
        Set.of(L + ".weight_scale"),
        w -> w.addFloats(L + ".weight_scale", SafetensorsDType.F16, new long[] {N, K / G}, s));
  }

  @Test
  void ctNaNScale() {
    writeCt(true);
    ctScaleAt(5, 2, Float.NaN);
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": scale of group 2, output 5 is NaN, expected a finite number (in "
            + dir
            + ")",
        this::readCt);
  }

  @Test
  void ctInfiniteScale() {
    writeCt(false);
    ctScaleAt(23, 0, Float.POSITIVE_INFINITY);
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": scale of group 0, output 23 is Infinity, expected a finite number (in "
            + dir
            + ")",
        this::readCt);
  }

  @Test
  void gptqNegativeInfiniteScale() {
    writeGptq(true);
    float[] s;
    try (SafetensorsFile f = SafetensorsFile.open(file())) {
      s = f.tensor(L + ".scales").toFloatArray();
    }
    s[N + 7] = Float.NEGATIVE_INFINITY;
    rewrite(
        file(),
        Set.of(L + ".scales"),
        w -> w.addFloats(L + ".scales", SafetensorsDType.F16, new long[] {K / G, N}, s));
    assertMessage(
        CheckpointException.class,
        "layer "
            + L
            + ": scale of group 1, output 7 is -Infinity, expected a finite number (in "
            + dir
            + ")",
        this::readGptq);
  }

  // --- W4A8 weight values ----------------------------------------------------------------------

  @Test
  void w4a8WeightOutsideTheInt4Range() {
    writeCt(new Spec(L, QuantScheme.W4A8, K, N, -1, true, false, false, DType.F16));
    byte[] values;
    try (SafetensorsFile f = SafetensorsFile.open(file())) {
      values = f.tensor(L + ".weight").toByteArray();
    }
    values[3 * K + 17] = 8;
    rewrite(
        file(), Set.of(L + ".weight"), w -> w.addBytes(L + ".weight", new long[] {N, K}, values));
    assertMessage(
        CheckpointException.class,
        "layer " + L + ": weight[3, 17] = 8, expected an int4 value in [-8, 7] (in " + file() + ")",
        this::readCt);
  }

  // --- config files ----------------------------------------------------------------------------

  @Test
  void ctMissingConfigJson() throws IOException {
    writeCt(true);
    Files.delete(config());
    assertMessage(
        CheckpointException.class,
        "missing config.json: expected the file " + config(),
        () -> CompressedTensorsCheckpoint.open(dir));
  }

  @Test
  void gptqMissingBothConfigs() throws IOException {
    writeGptq(true);
    Files.delete(config());
    Files.delete(quantizeConfig());
    assertMessage(
        CheckpointException.class,
        "no quantize_config.json in "
            + dir
            + " and no quantization_config in its config.json: expected a GPTQ checkpoint",
        () -> GptqCheckpoint.open(dir));
  }

  @Test
  void ctQuantMethodIsNotCompressedTensors() {
    writeCt(true);
    editJson(
        config(), c -> ((ObjectNode) c.get("quantization_config")).put("quant_method", "gptq"));
    assertMessage(
        CheckpointException.class,
        config() + ": quant_method is 'gptq', expected 'compressed-tensors'",
        () -> CompressedTensorsCheckpoint.open(dir));
  }

  @Test
  void gptqQuantMethodIsNotGptq() {
    writeGptq(true);
    editJson(quantizeConfig(), c -> c.put("quant_method", "awq"));
    assertMessage(
        CheckpointException.class,
        quantizeConfig() + ": quant_method is 'awq', expected 'gptq'",
        () -> GptqCheckpoint.open(dir));
  }

  @Test
  void ctEightBitWeights() {
    writeCt(true);
    editJson(config(), c -> ctWeights(c).put("num_bits", 8));
    assertMessage(
        CheckpointException.class,
        config()
            + " config_groups.group_0.weights: num_bits is 8, expected 4 (q4spark runs int4"
            + " weights)",
        () -> CompressedTensorsCheckpoint.open(dir));
  }

  @Test
  void ctUnknownStrategy() {
    writeCt(true);
    editJson(config(), c -> ctWeights(c).put("strategy", "tensor"));
    assertMessage(
        CheckpointException.class,
        config()
            + " config_groups.group_0.weights: strategy is 'tensor', expected 'group' or"
            + " 'channel'",
        () -> CompressedTensorsCheckpoint.open(dir));
  }

  @Test
  void ctUnknownActOrder() {
    writeCt(true);
    editJson(config(), c -> ctWeights(c).put("actorder", "sometimes"));
    assertMessage(
        CheckpointException.class,
        config()
            + " config_groups.group_0.weights: actorder is \"sometimes\", expected \"group\" (or"
            + " \"dynamic\"), \"weight\" (or \"static\"), true, false or null",
        () -> CompressedTensorsCheckpoint.open(dir));
  }

  @Test
  void ctConfigGroupsThatDiffer() {
    writeCt(true);
    editJson(
        config(),
        c -> {
          ObjectNode groups = (ObjectNode) c.get("quantization_config").get("config_groups");
          ObjectNode other = groups.get("group_0").deepCopy();
          ((ObjectNode) other.get("weights")).put("group_size", 128);
          groups.set("group_1", other);
        });
    assertMessage(
        CheckpointException.class,
        config()
            + ": config_groups group_0 (QuantizationArgs[scheme=W4A16, symmetric=true,"
            + " groupSize=64, actOrder=false, modelDtype=float16]) and group_1"
            + " (QuantizationArgs[scheme=W4A16, symmetric=true, groupSize=128, actOrder=false,"
            + " modelDtype=float16]) differ; q4spark reads checkpoints whose quantized layers"
            + " share one scheme",
        () -> CompressedTensorsCheckpoint.open(dir));
  }

  @Test
  void gptqThreeBits() {
    writeGptq(true);
    editJson(quantizeConfig(), c -> c.put("bits", 3));
    assertMessage(
        CheckpointException.class,
        quantizeConfig() + ": bits is 3, expected 4 (q4spark runs int4 weights)",
        () -> GptqCheckpoint.open(dir));
  }

  @Test
  void gptqUnknownCheckpointFormat() {
    writeGptq(true);
    editJson(quantizeConfig(), c -> c.put("checkpoint_format", "gptq_v3"));
    assertMessage(
        CheckpointException.class,
        quantizeConfig() + ": checkpoint_format is 'gptq_v3', expected 'gptq' or 'gptq_v2'",
        () -> GptqCheckpoint.open(dir));
  }

  // --- names ------------------------------------------------------------------------------------

  @Test
  void ctUnknownLayerName() {
    writeCt(true);
    try (CompressedTensorsCheckpoint c = CompressedTensorsCheckpoint.open(dir)) {
      assertMessage(
          CheckpointException.class,
          "layer model.layers.0.mlp.gate_proj is not a quantized layer of "
              + dir
              + "; layers: ["
              + L
              + "]",
          () -> c.layer("model.layers.0.mlp.gate_proj"));
    }
  }

  @Test
  void gptqUnknownLayerName() {
    writeGptq(true);
    try (GptqCheckpoint c = GptqCheckpoint.open(dir)) {
      assertMessage(
          CheckpointException.class,
          "layer " + L + ".qweight is not a GPTQ layer of " + dir + "; layers: [" + L + "]",
          () -> c.layer(L + ".qweight"));
    }
  }

  // --- writers ---------------------------------------------------------------------------------

  @Test
  void ctWriterRefusesShardCountsOutOfRange() {
    QuantizedLinear l = layer(w4a16(L, K, N, G, true, DType.F16)).layer();
    QuantizationArgs args = new QuantizationArgs(QuantScheme.W4A16, true, G, false, DType.F16);
    for (int shards : new int[] {0, 2}) {
      assertMessage(
          IllegalArgumentException.class,
          "shards should be between 1 and the number of layers (1), but was " + shards,
          () -> CompressedTensorsCheckpoint.write(dir, args, List.of(l), shards));
    }
  }

  @Test
  void writersRefuseALayerOfAnotherDtype() {
    QuantizedLinear l = layer(w4a16(L, K, N, G, true, DType.BF16)).layer();
    QuantizationArgs args = new QuantizationArgs(QuantScheme.W4A16, true, G, false, DType.F16);
    String layer =
        "layer "
            + L
            + " ("
            + L
            + " W4A16 K=256 N=24 weight=uint4b8 act=bfloat16 group=64) does not match ";
    String argsText =
        "QuantizationArgs[scheme=W4A16, symmetric=true, groupSize=64, actOrder=false,"
            + " modelDtype=float16]";
    assertMessage(
        IllegalArgumentException.class,
        layer + "the checkpoint's " + argsText,
        () -> CompressedTensorsCheckpoint.write(dir, args, List.of(l), 1));
    assertMessage(
        IllegalArgumentException.class,
        layer + argsText,
        () -> GptqCheckpoint.write(dir, args, false, List.of(l)));
  }

  // --- activations through Q4Linear ------------------------------------------------------------

  @Test
  void activationRowOfTheWrongLength() {
    writeCt(true);
    try (Q4Linear q = Q4Linear.create(readCt(), KernelOptions.defaults())) {
      float[][] rows = {new float[K], new float[K - 1], new float[K]};
      assertMessage(
          IllegalArgumentException.class,
          "layer " + L + ": activation row 1 has 255 values, expected K=256",
          () -> q.apply(rows));
      float[][] nullRow = {null};
      assertMessage(
          IllegalArgumentException.class,
          "layer " + L + ": activation row 0 has no values (null), expected K=256",
          () -> q.apply(nullRow));
    }
  }

  @Test
  void flatActivationsOfTheWrongLength() {
    writeGptq(false);
    try (Q4Linear q = Q4Linear.create(readGptq(), KernelOptions.defaults())) {
      assertMessage(
          IllegalArgumentException.class,
          "layer " + L + ": activations hold 511 values, expected rows * K = 2 * 256 = 512",
          () -> q.apply(new float[2 * K - 1], 2));
      assertMessage(
          IllegalArgumentException.class,
          "layer " + L + ": activations hold 3 values, expected rows * K = 0 * 256 = 0",
          () -> q.apply(new float[3], 0));
    }
  }
}
