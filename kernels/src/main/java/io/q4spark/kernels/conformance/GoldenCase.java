package io.q4spark.kernels.conformance;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.format.CheckpointException;
import io.q4spark.kernels.format.CompressedTensorsCheckpoint;
import io.q4spark.kernels.format.GptqCheckpoint;
import io.q4spark.kernels.format.QuantizationArgs;
import io.q4spark.kernels.format.SafetensorsFile;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.MatrixTranspose;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * One golden test vector ({@code ../shared/golden/README.md}): a safetensors file holding the same
 * layer in several layouts, the activations, and the outputs vLLM's kernel produced on an H100.
 * Each layout present is read through q4spark's own reader for that format.
 */
public final class GoldenCase implements AutoCloseable {
  /** A way to load the layer: the layout's name and the reader. */
  public record Layout(String name, Supplier<QuantizedLinear> reader) {}

  private final SafetensorsFile file;
  private final String kind;
  private final int m;
  private final int k;
  private final int n;
  private final int groupSize;
  private final ScalarType weightType;
  private final DType act;

  private GoldenCase(SafetensorsFile file) {
    this.file = file;
    Map<String, String> md = file.metadata();
    String where = file.path().getFileName().toString();
    this.kind = required(md, "kind", where);
    this.m = Integer.parseInt(required(md, "M", where));
    this.k = Integer.parseInt(required(md, "K", where));
    this.n = Integer.parseInt(required(md, "N", where));
    this.groupSize = Integer.parseInt(required(md, "group_size", where));
    this.weightType = ScalarType.parse(required(md, "weight_type", where));
    this.act = DType.parse(required(md, "act_dtype", where));
    if (!kind.equals("w4a16") && !kind.equals("w4a8")) {
      throw new CheckpointException(where + ": kind is '" + kind + "', expected w4a16 or w4a8");
    }
  }

  private static String required(Map<String, String> md, String key, String where) {
    String v = md.get(key);
    if (v == null) {
      throw new CheckpointException(where + ": __metadata__ has no '" + key + "'");
    }
    return v;
  }

  public static GoldenCase open(Path path) {
    return new GoldenCase(SafetensorsFile.open(path));
  }

  public String fileName() {
    return file.path().getFileName().toString();
  }

  public QuantScheme scheme() {
    return kind.equals("w4a16") ? QuantScheme.W4A16 : QuantScheme.W4A8;
  }

  public int rows() {
    return m;
  }

  public DType actType() {
    return act;
  }

  public float[] input() {
    return file.tensor("input").toFloatArray();
  }

  /** vLLM's output: {@code output_vllm_triton} (W4A16) or {@code output_fp16} (W4A8). */
  public float[] expectedOutput() {
    return file.tensor(scheme() == QuantScheme.W4A16 ? "output_vllm_triton" : "output_fp16")
        .toFloatArray();
  }

  /**
   * The high-precision reference: {@code output_fp32_reference} or {@code output_fp64_reference}.
   */
  public double[] referenceOutput() {
    return file.tensor(
            scheme() == QuantScheme.W4A16 ? "output_fp32_reference" : "output_fp64_reference")
        .toDoubleArray();
  }

  /** W4A8 only: the expected per-token int8 codes [M, K]. */
  public byte[] expectedActivationCodes() {
    return file.tensor("act_quant_codes").toByteArray();
  }

  /** W4A8 only: the expected per-token scales [M]. */
  public float[] expectedActivationScales() {
    return file.tensor("act_quant_scale").toFloatArray();
  }

  /** The layouts this file holds, each read by the matching q4spark reader. */
  public List<Layout> layouts() {
    List<Layout> layouts = new ArrayList<>();
    boolean zp = weightType.equals(ScalarType.UINT4);
    if (scheme() == QuantScheme.W4A16) {
      QuantizationArgs args = new QuantizationArgs(QuantScheme.W4A16, !zp, groupSize, false, act);
      if (file.contains("weight_packed")) {
        layouts.add(
            new Layout(
                "compressed-tensors", () -> CompressedTensorsCheckpoint.readLayer(file, "", args)));
      }
      if (file.contains("qweight")) {
        GptqCheckpoint.Config gptq = new GptqCheckpoint.Config(args, true);
        layouts.add(
            new Layout(
                "gptq-v2",
                () ->
                    GptqCheckpoint.readLayer(
                        file, "golden", s -> s.equals("qzeros") ? "qzeros_v2" : s, gptq)));
      }
      if (file.contains("kernel_qweight")) {
        layouts.add(new Layout("kernel", this::kernelLayoutW4A16));
      }
    } else {
      QuantizationArgs args = new QuantizationArgs(QuantScheme.W4A8, true, groupSize, false, act);
      if (file.contains("weight")) {
        layouts.add(
            new Layout(
                "compressed-tensors", () -> CompressedTensorsCheckpoint.readLayer(file, "", args)));
      }
      if (file.contains("weight_packed_uint4")) {
        layouts.add(new Layout("kernel", this::kernelLayoutW4A8));
      }
    }
    return layouts;
  }

  private LinearLayerConfig config() {
    boolean zp = weightType.equals(ScalarType.UINT4);
    int g = scheme() == QuantScheme.W4A8 && groupSize == -1 ? k : groupSize;
    return LinearLayerConfig.of(fileName(), k, n, weightType, act, g, zp, false, scheme());
  }

  private float[] bias() {
    return file.contains("bias") ? file.tensor("bias").toFloatArray() : null;
  }

  /** The seed kernel's layout after {@code process_weights_after_loading}. */
  private QuantizedLinear kernelLayoutW4A16() {
    LinearLayerConfig c = config();
    int groups = c.numGroups();
    PackedInt4Matrix w =
        new PackedInt4Matrix(Int4Layout.K_N8, k, n, file.tensor("kernel_qweight").toIntArray());
    PackedInt4Matrix z =
        c.zeroPoints()
            ? new PackedInt4Matrix(
                Int4Layout.K_N8, groups, n, file.tensor("kernel_qzeros").toIntArray())
            : null;
    return new QuantizedLinear(c, w, file.tensor("kernel_scales").toFloatArray(), z, null, bias());
  }

  /** The seed W4A8 kernel's packed [N, K/8] codes (value + 8) with [N, K/G] scales. */
  private QuantizedLinear kernelLayoutW4A8() {
    LinearLayerConfig c = config();
    PackedInt4Matrix w =
        new PackedInt4Matrix(
            Int4Layout.N_K8, k, n, file.tensor("weight_packed_uint4").toIntArray());
    float[] scales =
        MatrixTranspose.of(file.tensor("weight_scale").toFloatArray(), n, c.numGroups());
    return new QuantizedLinear(c, w, scales, null, null, bias());
  }

  @Override
  public void close() {
    file.close();
  }
}
