package io.q4spark.kernels.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.MatrixTranspose;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * A compressed-tensors checkpoint directory: {@code config.json} with a {@code quantization_config}
 * whose {@code quant_method} is {@code compressed-tensors}, and safetensors weights (one file or
 * sharded through {@code model.safetensors.index.json}).
 *
 * <p>Two schemes are read. W4A16, format {@code pack-quantized}: per layer
 *
 * <pre>
 *   weight_packed      I32   [N, K/8]    K packed: nibble i of word [n, j] is the code of k = 8j + i
 *   weight_scale       dtype [N, K/G]    ([N, 1] for strategy "channel")
 *   weight_zero_point  I32   [N/8, K/G]  N packed; only when symmetric is false
 *   weight_shape       I64   [2]         the unpacked [N, K]
 *   weight_g_idx       I32   [K]         only with actorder "group"
 *   codes are signed + 8 for symmetric and asymmetric alike: uint4b8, or uint4 with zero codes
 * </pre>
 *
 * and W4A8 (int8 dynamic per-token input activations), where {@code weight} is I8 [N, K] holding
 * int4 values in [-8, 7], unpacked, with {@code weight_scale} [N, K/G] and no zero points; a group
 * size of -1 is resolved to K, as vLLM's scheme does before kernel selection.
 */
public final class CompressedTensorsCheckpoint implements AutoCloseable {
  public static final String QUANT_METHOD = "compressed-tensors";
  static final String FORMAT_PACKED = "pack-quantized";
  static final String FORMAT_INT = "int-quantized";

  private final Path directory;
  private final QuantizationArgs args;
  private final SafetensorsCheckpoint tensors;
  private final List<String> layers;

  private CompressedTensorsCheckpoint(
      Path directory,
      QuantizationArgs args,
      SafetensorsCheckpoint tensors,
      List<Predicate<String>> ignore) {
    this.directory = directory;
    this.args = args;
    this.tensors = tensors;
    String suffix = args.scheme() == QuantScheme.W4A16 ? ".weight_packed" : ".weight";
    List<String> found = new ArrayList<>();
    for (String name : tensors.names()) {
      if (name.endsWith(suffix)) {
        String prefix = name.substring(0, name.length() - suffix.length());
        // W4A8 weights are named like unquantized ones; the scale marks the quantized layers. The
        // dtype is checked when the layer is read, so a wrong one is reported, not skipped.
        boolean quantized =
            args.scheme() == QuantScheme.W4A16 || tensors.contains(prefix + ".weight_scale");
        if (quantized && ignore.stream().noneMatch(p -> p.test(prefix))) {
          found.add(prefix);
        }
      }
    }
    this.layers = List.copyOf(found);
  }

  /**
   * An {@code ignore} entry as a test on layer names: a {@code re:} pattern must match at the start
   * of the name, as Python's {@code re.match} in vLLM and compressed-tensors does; a plain entry
   * must equal the name.
   */
  private static Predicate<String> ignoreEntry(String entry) {
    if (entry.startsWith("re:")) {
      Pattern p = Pattern.compile(entry.substring(3));
      return layer -> p.matcher(layer).lookingAt();
    }
    return entry::equals;
  }

  /** Opens {@code dir}, reading and checking its quantization config. */
  public static CompressedTensorsCheckpoint open(Path dir) {
    Path configFile = dir.resolve("config.json");
    JsonNode config = CheckpointJson.read(configFile);
    QuantizationArgs args = parseConfig(config, configFile.toString());
    List<Predicate<String>> ignore = new ArrayList<>();
    JsonNode ignoreNode = config.get("quantization_config").get("ignore");
    if (ignoreNode != null && ignoreNode.isArray()) {
      for (JsonNode n : ignoreNode) {
        ignore.add(ignoreEntry(n.asText()));
      }
    }
    return new CompressedTensorsCheckpoint(dir, args, SafetensorsCheckpoint.open(dir), ignore);
  }

  /**
   * Reads the quantization arguments from a {@code config.json} object. Quantized layers must share
   * one scheme: config groups that differ are refused.
   */
  public static QuantizationArgs parseConfig(JsonNode config, String where) {
    JsonNode q = config.get("quantization_config");
    if (q == null || !q.isObject()) {
      throw new CheckpointException(
          where + " has no quantization_config object: expected a compressed-tensors checkpoint");
    }
    String method = CheckpointJson.text(q, "quant_method", null, where);
    if (!QUANT_METHOD.equals(method)) {
      throw new CheckpointException(
          where + ": quant_method is '" + method + "', expected '" + QUANT_METHOD + "'");
    }
    String format = CheckpointJson.text(q, "format", null, where);
    JsonNode groups = q.get("config_groups");
    if (groups == null || !groups.isObject() || groups.isEmpty()) {
      throw new CheckpointException(where + ": quantization_config has no config_groups");
    }
    QuantizationArgs args = null;
    String firstGroup = null;
    for (Iterator<Map.Entry<String, JsonNode>> it = groups.properties().iterator();
        it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      String groupWhere = where + " config_groups." + e.getKey();
      String groupFormat = CheckpointJson.text(e.getValue(), "format", format, groupWhere);
      QuantizationArgs a =
          parseGroup(e.getValue(), groupFormat, modelDtype(config, where), groupWhere);
      if (args == null) {
        args = a;
        firstGroup = e.getKey();
      } else if (!args.equals(a)) {
        throw new CheckpointException(
            where
                + ": config_groups "
                + firstGroup
                + " ("
                + args
                + ") and "
                + e.getKey()
                + " ("
                + a
                + ") differ; q4spark reads checkpoints whose quantized layers share one scheme");
      }
    }
    return args;
  }

  /** {@code torch_dtype} (or {@code dtype}) of a config.json, float16 when absent. */
  static DType modelDtype(JsonNode config, String where) {
    String name = CheckpointJson.text(config, "torch_dtype", null, where);
    if (name == null) {
      name = CheckpointJson.text(config, "dtype", "float16", where);
    }
    try {
      return DType.parse(name);
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(where + ": torch_dtype: " + e.getMessage(), e);
    }
  }

  private static QuantizationArgs parseGroup(
      JsonNode group, String format, DType dtype, String where) {
    JsonNode w = group.get("weights");
    if (w == null || !w.isObject()) {
      throw new CheckpointException(
          where + ": 'weights' is missing; expected the weight quantization");
    }
    int bits = CheckpointJson.integer(w, "num_bits", null, where + ".weights");
    if (bits != 4) {
      throw new CheckpointException(
          where + ".weights: num_bits is " + bits + ", expected 4 (q4spark runs int4 weights)");
    }
    String type = CheckpointJson.text(w, "type", "int", where + ".weights");
    if (!"int".equals(type)) {
      throw new CheckpointException(where + ".weights: type is '" + type + "', expected 'int'");
    }
    boolean symmetric = CheckpointJson.bool(w, "symmetric", true, where + ".weights");
    String strategy =
        CheckpointJson.text(w, "strategy", "group", where + ".weights").toLowerCase(Locale.ROOT);
    int groupSize;
    switch (strategy) {
      case "group" -> groupSize = CheckpointJson.integer(w, "group_size", null, where + ".weights");
      case "channel" -> groupSize = -1;
      default ->
          throw new CheckpointException(
              where + ".weights: strategy is '" + strategy + "', expected 'group' or 'channel'");
    }
    if (groupSize == 0 || groupSize < -1) {
      throw new CheckpointException(
          where + ".weights: group_size is " + groupSize + ", expected a positive number or -1");
    }
    boolean actOrder = actOrder(w, where + ".weights");

    JsonNode in = group.get("input_activations");
    QuantScheme scheme;
    if (in == null || in.isNull()) {
      scheme = QuantScheme.W4A16;
      if (format != null && !FORMAT_PACKED.equals(format)) {
        throw new CheckpointException(
            where
                + ": format is '"
                + format
                + "', expected '"
                + FORMAT_PACKED
                + "' for int4 weights with floating-point activations");
      }
    } else {
      int aBits = CheckpointJson.integer(in, "num_bits", null, where + ".input_activations");
      String aStrategy = CheckpointJson.text(in, "strategy", "token", where + ".input_activations");
      boolean dynamic = CheckpointJson.bool(in, "dynamic", true, where + ".input_activations");
      if (aBits != 8 || !"token".equals(aStrategy) || !dynamic) {
        throw new CheckpointException(
            where
                + ".input_activations: num_bits "
                + aBits
                + ", strategy '"
                + aStrategy
                + "', dynamic "
                + dynamic
                + "; expected 8-bit dynamic per-token activations (W4A8)");
      }
      if (!symmetric) {
        throw new CheckpointException(
            where + ".weights: W4A8 needs symmetric int4 weights, but symmetric is false");
      }
      if (actOrder) {
        throw new CheckpointException(
            where + ".weights: W4A8 checkpoints have no act-order (actorder 'group')");
      }
      scheme = QuantScheme.W4A8;
    }
    return new QuantizationArgs(scheme, symmetric, groupSize, actOrder, dtype);
  }

  /**
   * Whether {@code actorder} asks for act-order groups, read as compressed-tensors reads it: {@code
   * "group"} (alias {@code "dynamic"}) or {@code true} means a {@code weight_g_idx} per layer;
   * {@code "weight"} (alias {@code "static"}) only reordered the weight while quantizing, so there
   * is no g_idx; null and {@code false} mean none. Case is ignored. Anything else is refused rather
   * than read as "none", which would silently drop a g_idx.
   */
  private static boolean actOrder(JsonNode weights, String where) {
    JsonNode v = weights.get("actorder");
    if (v == null || v.isNull()) {
      return false;
    }
    if (v.isBoolean()) {
      return v.booleanValue();
    }
    if (v.isTextual()) {
      switch (v.textValue().toLowerCase(Locale.ROOT)) {
        case "group", "dynamic" -> {
          return true;
        }
        case "weight", "static" -> {
          return false;
        }
        default -> {}
      }
    }
    throw new CheckpointException(
        where
            + ": actorder is "
            + v
            + ", expected \"group\" (or \"dynamic\"), \"weight\" (or \"static\"), true, false or"
            + " null");
  }

  public Path directory() {
    return directory;
  }

  public QuantizationArgs args() {
    return args;
  }

  /** Names (tensor prefixes) of the quantized linear layers, sorted; ignored layers excluded. */
  public List<String> layers() {
    return layers;
  }

  /** Reads one layer. */
  public QuantizedLinear layer(String name) {
    if (!layers.contains(name)) {
      throw new CheckpointException(
          "layer " + name + " is not a quantized layer of " + directory + "; layers: " + layers);
    }
    return readLayer(tensors, name, args);
  }

  /**
   * Reads the layer whose tensors are named {@code prefix.weight_packed} (and so on) in {@code
   * source}.
   */
  public static QuantizedLinear readLayer(
      TensorSource source, String prefix, QuantizationArgs args) {
    return readLayer(LayerTensors.withPrefix(source, prefix), args);
  }

  static QuantizedLinear readLayer(LayerTensors t, QuantizationArgs args) {
    return args.scheme() == QuantScheme.W4A16 ? readW4A16(t, args) : readW4A8(t, args);
  }

  private static QuantizedLinear readW4A16(LayerTensors t, QuantizationArgs args) {
    TensorView packed = t.get("weight_packed", null, null, "", SafetensorsDType.I32);
    t.requireRank("weight_packed", packed, 2, "[N, K/8]");
    int n = Math.toIntExact(packed.dim(0));
    int k = Math.toIntExact(packed.dim(1) * Int4Layout.PACK);
    String kFrom = "weight_packed [N, K/8] = " + Arrays.toString(packed.shape());
    if (t.has("weight_shape")) {
      TensorView ws =
          t.get(
              "weight_shape",
              new long[] {2},
              "[2]",
              "",
              SafetensorsDType.I64,
              SafetensorsDType.I32);
      long[] shape =
          ws.dtype() == SafetensorsDType.I64
              ? ws.toLongArray()
              : Arrays.stream(ws.toIntArray()).asLongStream().toArray();
      if (shape[0] != n || (shape[1] + Int4Layout.PACK - 1) / Int4Layout.PACK != packed.dim(1)) {
        throw t.error(
            "weight_shape is ["
                + shape[0]
                + ", "
                + shape[1]
                + "], but "
                + kFrom
                + " (in "
                + ws.source()
                + ")");
      }
      if (shape[1] % Int4Layout.PACK != 0) {
        throw t.error(
            "K = "
                + shape[1]
                + " (weight_shape) is not a multiple of 8: the kernels need whole int32 words of 8"
                + " codes along K");
      }
    }
    int g = groupSize(t, args.groupSize(), k, kFrom);
    int groups = k / g;
    String dims = " for K=" + k + ", N=" + n + ", G=" + g;
    float[] scalesNG = t.floats("weight_scale", new long[] {n, groups}, "[N, K/G]", dims);
    PackedInt4Matrix zeros = null;
    if (!args.symmetric()) {
      if (!t.has("weight_zero_point")) {
        throw t.missing("weight_zero_point", "the config is asymmetric (symmetric: false)");
      }
      requireMultipleOf8(t, n, "N", "zero points are packed 8 per int32 word along N");
      int[] z = t.ints("weight_zero_point", new long[] {n / 8, groups}, "[N/8, K/G]", dims);
      zeros = new PackedInt4Matrix(Int4Layout.N8_K, groups, n, z);
    }
    int[] gIdx = null;
    if (args.actOrder()) {
      if (!t.has("weight_g_idx")) {
        throw t.missing("weight_g_idx", "the config uses act-order (actorder: group)");
      }
      gIdx =
          LayerTensors.nonTrivialGIdx(
              t.ints("weight_g_idx", new long[] {k}, "[K]", " for K=" + k), g);
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
              args.groupSize() == -1 ? -1 : g,
              !args.symmetric(),
              gIdx != null,
              QuantScheme.W4A16);
      PackedInt4Matrix weight = new PackedInt4Matrix(Int4Layout.N_K8, k, n, packed.toIntArray());
      return new QuantizedLinear(
          c, weight, MatrixTranspose.of(scalesNG, n, groups), zeros, gIdx, bias);
    } catch (IllegalArgumentException e) {
      throw t.invalid(e);
    }
  }

  private static QuantizedLinear readW4A8(LayerTensors t, QuantizationArgs args) {
    TensorView w = t.get("weight", null, null, "", SafetensorsDType.I8);
    t.requireRank("weight", w, 2, "[N, K]");
    int n = Math.toIntExact(w.dim(0));
    int k = Math.toIntExact(w.dim(1));
    requireMultipleOf8(t, k, "K", "the kernels pack 8 int4 codes per int32 word along K");
    int g = groupSize(t, args.groupSize(), k, "weight [N, K] = " + Arrays.toString(w.shape()));
    int groups = k / g;
    byte[] values = w.toByteArray();
    for (int i = 0; i < values.length; i++) {
      if (values[i] < -8 || values[i] > 7) {
        throw t.error(
            "weight["
                + i / k
                + ", "
                + i % k
                + "] = "
                + values[i]
                + ", expected an int4 value in [-8, 7] (in "
                + w.source()
                + ")");
      }
    }
    float[] scalesNG =
        t.floats(
            "weight_scale",
            new long[] {n, groups},
            "[N, K/G]",
            " for K=" + k + ", N=" + n + ", G=" + g);
    float[] bias = t.has("bias") ? t.floats("bias", new long[] {n}, "[N]", " for N=" + n) : null;
    try {
      // vLLM's W4A8 scheme resolves a group size of -1 to K before kernel selection.
      LinearLayerConfig c =
          LinearLayerConfig.of(
              t.layer(),
              k,
              n,
              ScalarType.INT4,
              args.modelDtype(),
              g,
              false,
              false,
              QuantScheme.W4A8);
      PackedInt4Matrix weight = PackedInt4Matrix.fromInt8NK(Int4Layout.N_K8, k, n, values, 8);
      return new QuantizedLinear(
          c, weight, MatrixTranspose.of(scalesNG, n, groups), null, null, bias);
    } catch (IllegalArgumentException e) {
      throw t.invalid(e);
    }
  }

  /**
   * The group size with -1 resolved to K, checked to divide K ({@code kFrom} says where K is from).
   */
  private static int groupSize(LayerTensors t, int groupSize, int k, String kFrom) {
    int g = groupSize == -1 ? k : groupSize;
    if (k % g != 0) {
      throw t.error(
          "K = " + k + " (from " + kFrom + ") is not divisible by the config's group size " + g);
    }
    return g;
  }

  private static void requireMultipleOf8(LayerTensors t, int value, String what, String why) {
    if (value % Int4Layout.PACK != 0) {
      throw t.error(what + " = " + value + " is not a multiple of 8: " + why);
    }
  }

  /**
   * Writes {@code layers} as a compressed-tensors checkpoint into {@code dir}: {@code config.json}
   * and the weights, in one file or split into {@code shards} files with an index.
   *
   * @param shards number of safetensors files, from 1 to the number of layers (each file holds at
   *     least one whole layer)
   * @throws IllegalArgumentException if {@code shards} is out of range or a layer does not match
   *     {@code args} (scheme, zero points, group size, act-order, activation dtype)
   */
  public static void write(
      Path dir, QuantizationArgs args, List<QuantizedLinear> layers, int shards) {
    if (shards < 1 || shards > Math.max(1, layers.size())) {
      throw new IllegalArgumentException(
          "shards should be between 1 and the number of layers ("
              + layers.size()
              + "), but was "
              + shards);
    }
    for (QuantizedLinear l : layers) {
      checkMatches(l, args);
    }
    ObjectNode config = CheckpointJson.newObject();
    config.put("torch_dtype", args.modelDtype().torchName());
    ObjectNode q = config.putObject("quantization_config");
    q.put("quant_method", QUANT_METHOD);
    boolean w4a8 = args.scheme() == QuantScheme.W4A8;
    q.put("format", w4a8 ? FORMAT_INT : FORMAT_PACKED);
    q.put("quantization_status", "compressed");
    ObjectNode group = q.putObject("config_groups").putObject("group_0");
    ArrayNode targets = group.putArray("targets");
    targets.add("Linear");
    ObjectNode w = group.putObject("weights");
    w.put("num_bits", 4);
    w.put("type", "int");
    w.put("symmetric", args.symmetric());
    w.put("dynamic", false);
    if (args.groupSize() == -1) {
      w.put("strategy", "channel");
      w.putNull("group_size");
    } else {
      w.put("strategy", "group");
      w.put("group_size", args.groupSize());
    }
    if (args.actOrder()) {
      w.put("actorder", "group");
    } else {
      w.putNull("actorder");
    }
    if (w4a8) {
      ObjectNode in = group.putObject("input_activations");
      in.put("num_bits", 8);
      in.put("type", "int");
      in.put("symmetric", true);
      in.put("strategy", "token");
      in.put("dynamic", true);
    } else {
      group.putNull("input_activations");
    }
    q.putArray("ignore");

    List<SafetensorsWriter> files = new ArrayList<>();
    for (int i = 0; i < shards; i++) {
      files.add(new SafetensorsWriter().metadata("format", "pt"));
    }
    for (int i = 0; i < layers.size(); i++) {
      QuantizedLinear l = layers.get(i);
      SafetensorsWriter out = files.get(i * shards / layers.size());
      String p = l.config().layer() + ".";
      int k = l.config().k();
      int n = l.config().n();
      int groups = l.config().numGroups();
      SafetensorsDType dt = SafetensorsDType.of(args.modelDtype());
      if (w4a8) {
        out.addBytes(p + "weight", new long[] {n, k}, l.weight().toInt8NK(8));
      } else {
        PackedInt4Matrix packed = l.weight().toLayout(Int4Layout.N_K8);
        out.addInts(p + "weight_packed", packed.shape(), packed.words());
        out.addLongs(p + "weight_shape", new long[] {2}, new long[] {n, k});
        if (l.zeros() != null) {
          PackedInt4Matrix z = l.zeros().toLayout(Int4Layout.N8_K);
          out.addInts(p + "weight_zero_point", z.shape(), z.words());
        }
        if (args.actOrder()) {
          out.addInts(p + "weight_g_idx", new long[] {k}, LayerTensors.gIdxOrDefault(l));
        }
      }
      out.addFloats(
          p + "weight_scale",
          dt,
          new long[] {n, groups},
          MatrixTranspose.of(l.scales(), groups, n));
      if (l.bias() != null) {
        out.addFloats(p + "bias", dt, new long[] {n}, l.bias());
      }
    }
    ShardedSafetensorsWriter.write(dir, files);
    CheckpointJson.write(dir.resolve("config.json"), config);
  }

  private static void checkMatches(QuantizedLinear l, QuantizationArgs args) {
    LinearLayerConfig c = l.config();
    boolean groupMatches =
        args.groupSize() == c.groupSize()
            || (args.scheme() == QuantScheme.W4A8
                && args.groupSize() == -1
                && c.groupSize() == c.k());
    if (c.scheme() != args.scheme()
        || c.zeroPoints() == args.symmetric()
        || !groupMatches
        || (c.hasGIdx() && !args.actOrder())
        || c.actType() != args.modelDtype()) {
      throw new IllegalArgumentException(
          "layer " + c.layer() + " (" + c.describe() + ") does not match the checkpoint's " + args);
    }
  }

  @Override
  public void close() {
    tensors.close();
  }
}
