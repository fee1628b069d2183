package io.q4spark.kernels.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A GPTQ checkpoint directory (AutoGPTQ / GPTQModel): {@code quantize_config.json} (or a {@code
 * config.json} whose {@code quantization_config} has {@code quant_method: gptq}) with {@code bits},
 * {@code group_size}, {@code desc_act}, {@code sym} and {@code checkpoint_format}, and per layer
 *
 * <pre>
 *   qweight  I32   [K/8, N]    K packed: nibble i of word [r, n] is the code of k = 8r + i
 *   qzeros   I32   [K/G, N/8]  N packed zero codes; v1 ("gptq") stores zero - 1, v2 the true zero
 *   scales   dtype [K/G, N]
 *   g_idx    I32   [K]         group of each input feature; used only with desc_act (act-order)
 * </pre>
 *
 * Symmetric layers are {@code uint4b8}: the zero is the constant 8 and {@code qzeros} is ignored,
 * as vLLM does. Asymmetric layers are {@code uint4} with zero points; a v1 file's zeros get 1 added
 * back (mod 16) per nibble, a v2 file's are used as stored.
 */
public final class GptqCheckpoint implements AutoCloseable {
  public static final String QUANTIZE_CONFIG = "quantize_config.json";
  static final String QUANT_METHOD = "gptq";
  static final String FORMAT_V1 = "gptq";
  static final String FORMAT_V2 = "gptq_v2";

  /** {@code quantize_config.json} as read. */
  public record Config(QuantizationArgs args, boolean v2) {}

  private final Path directory;
  private final Config config;
  private final SafetensorsCheckpoint tensors;
  private final List<String> layers;

  private GptqCheckpoint(Path directory, Config config, SafetensorsCheckpoint tensors) {
    this.directory = directory;
    this.config = config;
    this.tensors = tensors;
    List<String> found = new ArrayList<>();
    for (String name : tensors.names()) {
      if (name.endsWith(".qweight")) {
        found.add(name.substring(0, name.length() - ".qweight".length()));
      }
    }
    this.layers = List.copyOf(found);
  }

  public static GptqCheckpoint open(Path dir) {
    Path qc = dir.resolve(QUANTIZE_CONFIG);
    Path cfg = dir.resolve("config.json");
    JsonNode modelConfig =
        Files.isRegularFile(cfg) ? CheckpointJson.read(cfg) : CheckpointJson.newObject();
    JsonNode quant;
    String where;
    if (Files.isRegularFile(qc)) {
      quant = CheckpointJson.read(qc);
      where = qc.toString();
      // quantize_config.json often omits quant_method; when present it must say GPTQ (AWQ, for one,
      // packs qweight along N and would be misread).
      String method = CheckpointJson.text(quant, "quant_method", QUANT_METHOD, where);
      if (!QUANT_METHOD.equals(method)) {
        throw new CheckpointException(
            where + ": quant_method is '" + method + "', expected '" + QUANT_METHOD + "'");
      }
    } else if (modelConfig.has("quantization_config")) {
      quant = modelConfig.get("quantization_config");
      where = cfg + " quantization_config";
      String method = CheckpointJson.text(quant, "quant_method", null, where);
      if (!QUANT_METHOD.equals(method)) {
        throw new CheckpointException(
            where + ": quant_method is '" + method + "', expected '" + QUANT_METHOD + "'");
      }
    } else {
      throw new CheckpointException(
          "no "
              + QUANTIZE_CONFIG
              + " in "
              + dir
              + " and no quantization_config in its config.json:"
              + " expected a GPTQ checkpoint");
    }
    Config c =
        parseConfig(
            quant, CompressedTensorsCheckpoint.modelDtype(modelConfig, cfg.toString()), where);
    return new GptqCheckpoint(dir, c, SafetensorsCheckpoint.open(dir));
  }

  /** Reads {@code quantize_config.json} fields; {@code dtype} is the model's activation dtype. */
  public static Config parseConfig(JsonNode q, DType dtype, String where) {
    int bits = CheckpointJson.integer(q, "bits", null, where);
    if (bits != 4) {
      throw new CheckpointException(
          where + ": bits is " + bits + ", expected 4 (q4spark runs int4 weights)");
    }
    int groupSize = CheckpointJson.integer(q, "group_size", -1, where);
    if (groupSize == 0 || groupSize < -1) {
      throw new CheckpointException(
          where + ": group_size is " + groupSize + ", expected a positive number or -1");
    }
    boolean descAct = CheckpointJson.bool(q, "desc_act", false, where);
    boolean sym = CheckpointJson.bool(q, "sym", true, where);
    String format = CheckpointJson.text(q, "checkpoint_format", FORMAT_V1, where);
    if (!FORMAT_V1.equals(format) && !FORMAT_V2.equals(format)) {
      throw new CheckpointException(
          where
              + ": checkpoint_format is '"
              + format
              + "', expected '"
              + FORMAT_V1
              + "' or '"
              + FORMAT_V2
              + "'");
    }
    return new Config(
        new QuantizationArgs(QuantScheme.W4A16, sym, groupSize, descAct, dtype),
        FORMAT_V2.equals(format));
  }

  public Path directory() {
    return directory;
  }

  public Config config() {
    return config;
  }

  public List<String> layers() {
    return layers;
  }

  public QuantizedLinear layer(String name) {
    if (!layers.contains(name)) {
      throw new CheckpointException(
          "layer " + name + " is not a GPTQ layer of " + directory + "; layers: " + layers);
    }
    return readLayer(LayerTensors.withPrefix(tensors, name), config);
  }

  /**
   * Reads a layer from {@code source}; {@code nameOf} maps GPTQ's short names ({@code qweight},
   * {@code qzeros}, {@code scales}, {@code g_idx}, {@code bias}) to the names in the source.
   */
  public static QuantizedLinear readLayer(
      TensorSource source,
      String layer,
      java.util.function.UnaryOperator<String> nameOf,
      Config config) {
    return readLayer(new LayerTensors(source, layer, nameOf), config);
  }

  static QuantizedLinear readLayer(LayerTensors t, Config config) {
    QuantizationArgs args = config.args();
    TensorView qweight = t.get("qweight", null, null, "", SafetensorsDType.I32);
    t.requireRank("qweight", qweight, 2, "[K/8, N]");
    int k = Math.toIntExact(qweight.dim(0) * Int4Layout.PACK);
    int n = Math.toIntExact(qweight.dim(1));
    int g = args.groupSize() == -1 ? k : args.groupSize();
    if (k % g != 0) {
      throw t.error(
          "K = "
              + k
              + " (from qweight [K/8, N] = "
              + Arrays.toString(qweight.shape())
              + ") is not divisible by the config's group size "
              + g);
    }
    int groups = k / g;
    String dims = " for K=" + k + ", N=" + n + ", G=" + g;
    float[] scales = t.floats("scales", new long[] {groups, n}, "[K/G, N]", dims);
    PackedInt4Matrix zeros = null;
    if (!args.symmetric()) {
      if (n % Int4Layout.PACK != 0) {
        throw t.error(
            "N = "
                + n
                + " is not a multiple of 8: asymmetric qzeros are packed 8 per int32 word along N");
      }
      int[] z = t.ints("qzeros", new long[] {groups, n / 8}, "[K/G, N/8]", dims);
      zeros = new PackedInt4Matrix(Int4Layout.K_N8, groups, n, z);
      if (!config.v2()) {
        // GPTQ v1 stores zero - 1; its dequantization adds the 1 back, modulo the 4-bit range.
        zeros = zeros.addToEveryCode(1);
      }
    }
    int[] gIdx = null;
    if (args.actOrder() && t.has("g_idx")) {
      gIdx = LayerTensors.nonTrivialGIdx(t.ints("g_idx", new long[] {k}, "[K]", " for K=" + k), g);
    } else if (args.actOrder()) {
      throw t.missing("g_idx", "desc_act is true (act-order)");
    }
    float[] bias = t.has("bias") ? t.floats("bias", new long[] {n}, "[N]", " for N=" + n) : null;
    try {
      LinearLayerConfig c =
          LinearLayerConfig.of(
              t.layer(),
              k,
              n,
              args.symmetric() ? ScalarType.UINT4B8 : ScalarType.UINT4,
              args.modelDtype(),
              args.groupSize(),
              !args.symmetric(),
              gIdx != null,
              QuantScheme.W4A16);
      return new QuantizedLinear(
          c,
          new PackedInt4Matrix(Int4Layout.K8_N, k, n, qweight.toIntArray()),
          scales,
          zeros,
          gIdx,
          bias);
    } catch (IllegalArgumentException e) {
      throw t.invalid(e);
    }
  }

  /**
   * Writes {@code layers} as a GPTQ checkpoint: {@code quantize_config.json}, {@code config.json}
   * and one safetensors file. Symmetric layers get the qzeros a GPTQ writer stores (7 in v1, 8 in
   * v2).
   *
   * @throws IllegalArgumentException if a layer does not match {@code args} (scheme, zero points,
   *     group size, act-order, activation dtype)
   */
  public static void write(
      Path dir, QuantizationArgs args, boolean v2, List<QuantizedLinear> layers) {
    ObjectNode qc = CheckpointJson.newObject();
    qc.put("bits", 4);
    qc.put("group_size", args.groupSize());
    qc.put("desc_act", args.actOrder());
    qc.put("sym", args.symmetric());
    qc.put("checkpoint_format", v2 ? FORMAT_V2 : FORMAT_V1);
    ObjectNode config = CheckpointJson.newObject();
    config.put("torch_dtype", args.modelDtype().torchName());
    ObjectNode q = config.putObject("quantization_config");
    q.put("quant_method", QUANT_METHOD);
    q.setAll(qc.deepCopy());

    SafetensorsWriter out = new SafetensorsWriter().metadata("format", "pt");
    SafetensorsDType dt = SafetensorsDType.of(args.modelDtype());
    for (QuantizedLinear l : layers) {
      LinearLayerConfig c = l.config();
      if (c.scheme() != QuantScheme.W4A16
          || c.zeroPoints() == args.symmetric()
          || c.groupSize() != args.groupSize()
          || (c.hasGIdx() && !args.actOrder())
          || c.actType() != args.modelDtype()) {
        throw new IllegalArgumentException(
            "layer " + c.layer() + " (" + c.describe() + ") does not match " + args);
      }
      String p = c.layer() + ".";
      int groups = c.numGroups();
      PackedInt4Matrix qweight = l.weight().toLayout(Int4Layout.K8_N);
      out.addInts(p + "qweight", qweight.shape(), qweight.words());
      PackedInt4Matrix zeros;
      if (l.zeros() != null) {
        zeros = l.zeros().toLayout(Int4Layout.K_N8);
      } else {
        int[] words = new int[groups * c.n() / 8];
        Arrays.fill(words, 0x88888888);
        zeros = new PackedInt4Matrix(Int4Layout.K_N8, groups, c.n(), words);
      }
      if (!v2) {
        zeros = zeros.addToEveryCode(-1);
      }
      out.addInts(p + "qzeros", zeros.shape(), zeros.words());
      out.addFloats(p + "scales", dt, new long[] {groups, c.n()}, l.scales());
      out.addInts(p + "g_idx", new long[] {c.k()}, LayerTensors.gIdxOrDefault(l));
      if (l.bias() != null) {
        out.addFloats(p + "bias", dt, new long[] {c.n()}, l.bias());
      }
    }
    out.write(dir.resolve("model.safetensors"));
    CheckpointJson.write(dir.resolve(QUANTIZE_CONFIG), qc);
    CheckpointJson.write(dir.resolve("config.json"), config);
  }

  @Override
  public void close() {
    tensors.close();
  }
}
