package io.q4spark.spark.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.q4spark.kernels.format.CompressedTensorsCheckpoint;
import io.q4spark.kernels.format.GptqCheckpoint;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;

/**
 * Reads a model's layers from a checkpoint directory on the driver, with the model options:
 *
 * <pre>
 *   format       auto (default) | compressed-tensors | gptq
 *   layers       comma-separated layer names, in the order they run (default: every quantized
 *                layer, in the checkpoint's name order)
 *   activation   none (default) | relu | gelu | silu: after every layer but the last
 *   activations  comma-separated, one per layer (overrides activation), e.g. relu,none
 * </pre>
 *
 * {@code auto} reads GPTQ when the directory has {@code quantize_config.json} or its {@code
 * config.json} says {@code quant_method: gptq}, and compressed-tensors when it says {@code
 * compressed-tensors}.
 */
public final class ModelCheckpoint {
  public static final String FORMAT = "format";
  public static final String LAYERS = "layers";
  public static final String ACTIVATION = "activation";
  public static final String ACTIVATIONS = "activations";
  private static final Set<String> OPTIONS =
      new TreeSet<>(List.of(FORMAT, LAYERS, ACTIVATION, ACTIVATIONS));

  static final String COMPRESSED_TENSORS = "compressed-tensors";
  static final String GPTQ = "gptq";

  private ModelCheckpoint() {}

  /**
   * The layers of {@code dir} selected and ordered by {@code options}, each with its activation.
   *
   * @throws IllegalArgumentException for an unknown option or value, a layer not in the checkpoint,
   *     or consecutive layers whose shapes do not chain
   */
  public static List<ModelLayer> read(String model, Path dir, Map<String, String> options) {
    List<ModelLayer> layers = new ArrayList<>();
    visit(model, dir, options, layers::add);
    checkChain(model, layers);
    return layers;
  }

  /**
   * What the driver learns of a model the executors load themselves: each layer's one-line
   * description, K and N. Every layer is read and checked as {@link #read} does, but one at a time,
   * so the driver holds at most one layer's weights however large the model is.
   *
   * @throws IllegalArgumentException as {@link #read}
   */
  public static Summary inspect(String model, Path dir, Map<String, String> options) {
    List<String> described = new ArrayList<>();
    List<int[]> shapes = new ArrayList<>();
    List<String> names = new ArrayList<>();
    visit(
        model,
        dir,
        options,
        l -> {
          described.add(l.describe());
          names.add(l.name());
          shapes.add(new int[] {l.linear().config().k(), l.linear().config().n()});
        });
    for (int i = 0; i + 1 < shapes.size(); i++) {
      if (shapes.get(i)[1] != shapes.get(i + 1)[0]) {
        throw chainError(
            model, names.get(i), shapes.get(i)[1], names.get(i + 1), shapes.get(i + 1)[0]);
      }
    }
    return new Summary(described, shapes.getFirst()[0], shapes.getLast()[1]);
  }

  /**
   * A model's layers as the driver describes them, without their weights.
   *
   * @param described one line per layer ({@link ModelLayer#describe})
   * @param k the first layer's inputs
   * @param n the last layer's outputs
   */
  public record Summary(List<String> described, int k, int n) {}

  /** Reads the selected layers in order, handing each to {@code sink} before reading the next. */
  private static void visit(
      String model, Path dir, Map<String, String> options, Consumer<ModelLayer> sink) {
    for (String key : options.keySet()) {
      if (!OPTIONS.contains(key)) {
        throw new IllegalArgumentException(
            "model '" + model + "': unknown option '" + key + "', expected one of " + OPTIONS);
      }
    }
    if (!Files.isDirectory(dir)) {
      throw new IllegalArgumentException(
          "model '" + model + "': checkpoint directory " + dir + " does not exist");
    }
    String format = detect(model, dir, options.getOrDefault(FORMAT, "auto"));
    if (format.equals(GPTQ)) {
      try (GptqCheckpoint c = GptqCheckpoint.open(dir)) {
        List<String> names = select(model, dir, c.layers(), options.get(LAYERS));
        List<Activation> activations = activations(model, names.size(), options);
        for (int i = 0; i < names.size(); i++) {
          sink.accept(new ModelLayer(c.layer(names.get(i)), activations.get(i)));
        }
      }
    } else {
      try (CompressedTensorsCheckpoint c = CompressedTensorsCheckpoint.open(dir)) {
        List<String> names = select(model, dir, c.layers(), options.get(LAYERS));
        List<Activation> activations = activations(model, names.size(), options);
        for (int i = 0; i < names.size(); i++) {
          sink.accept(new ModelLayer(c.layer(names.get(i)), activations.get(i)));
        }
      }
    }
  }

  /** Checks that each layer's N is the next layer's K. */
  public static void checkChain(String model, List<ModelLayer> layers) {
    for (int i = 0; i + 1 < layers.size(); i++) {
      ModelLayer a = layers.get(i);
      ModelLayer b = layers.get(i + 1);
      if (a.linear().config().n() != b.linear().config().k()) {
        throw chainError(
            model, a.name(), a.linear().config().n(), b.name(), b.linear().config().k());
      }
    }
  }

  private static IllegalArgumentException chainError(
      String model, String a, int aN, String b, int bK) {
    return new IllegalArgumentException(
        "model '"
            + model
            + "': layer "
            + a
            + " gives N="
            + aN
            + " outputs but the next layer "
            + b
            + " takes K="
            + bK
            + " inputs; consecutive layers must chain (the layers option chooses and orders"
            + " them)");
  }

  private static String detect(String model, Path dir, String format) {
    String f = format.trim().toLowerCase(Locale.ROOT);
    if (f.equals(GPTQ) || f.equals(COMPRESSED_TENSORS)) {
      return f;
    }
    if (!f.equals("auto")) {
      throw new IllegalArgumentException(
          "model '"
              + model
              + "': format is '"
              + format
              + "', expected one of [auto, compressed-tensors, gptq]");
    }
    if (Files.isRegularFile(dir.resolve(GptqCheckpoint.QUANTIZE_CONFIG))) {
      return GPTQ;
    }
    Path config = dir.resolve("config.json");
    if (!Files.isRegularFile(config)) {
      throw new IllegalArgumentException(
          "model '"
              + model
              + "': "
              + dir
              + " holds neither config.json nor "
              + GptqCheckpoint.QUANTIZE_CONFIG
              + ": expected a compressed-tensors or GPTQ checkpoint directory");
    }
    JsonNode method;
    try {
      method =
          new ObjectMapper()
              .readTree(config.toFile())
              .path("quantization_config")
              .get("quant_method");
    } catch (IOException e) {
      throw new UncheckedIOException("model '" + model + "': cannot read " + config, e);
    }
    String m = method == null ? null : method.asText();
    if (GPTQ.equals(m) || COMPRESSED_TENSORS.equals(m)) {
      return m;
    }
    throw new IllegalArgumentException(
        "model '"
            + model
            + "': "
            + config
            + " has quantization_config.quant_method "
            + (m == null ? "missing" : "'" + m + "'")
            + ", expected 'compressed-tensors' or 'gptq'");
  }

  private static List<String> select(String model, Path dir, List<String> all, String option) {
    if (option == null || option.isBlank()) {
      if (all.isEmpty()) {
        throw new IllegalArgumentException(
            "model '" + model + "': " + dir + " holds no quantized linear layer");
      }
      return all;
    }
    List<String> names = list(option);
    for (String n : names) {
      if (!all.contains(n)) {
        throw new IllegalArgumentException(
            "model '" + model + "': layer " + n + " is not in " + dir + "; its layers are " + all);
      }
    }
    return names;
  }

  private static List<Activation> activations(
      String model, int layers, Map<String, String> options) {
    String perLayer = options.get(ACTIVATIONS);
    List<Activation> result = new ArrayList<>();
    try {
      if (perLayer != null) {
        List<String> names = list(perLayer);
        if (names.size() != layers) {
          throw new IllegalArgumentException(
              "model '"
                  + model
                  + "': activations lists "
                  + names.size()
                  + " entries, expected one per layer ("
                  + layers
                  + ")");
        }
        names.forEach(n -> result.add(Activation.parse(n)));
        return result;
      }
      Activation between = Activation.parse(options.getOrDefault(ACTIVATION, "none"));
      for (int i = 0; i < layers; i++) {
        result.add(i + 1 < layers ? between : Activation.NONE);
      }
      return result;
    } catch (IllegalArgumentException e) {
      if (e.getMessage().startsWith("model '")) {
        throw e;
      }
      throw new IllegalArgumentException("model '" + model + "': " + e.getMessage(), e);
    }
  }

  private static List<String> list(String csv) {
    return Arrays.stream(csv.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
  }
}
