package io.q4spark.jobs.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.q4spark.kernels.Acceptance;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelCatalog;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearKernel;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.Q4Linear;
import io.q4spark.kernels.QuantScheme;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Everything one shape's rows run on, built once from one {@link BenchWeights}: our kernels' layers
 * and ONNX Runtime's sessions, each in as many copies as cold mode needs, plus the input and output
 * buffers of each M. Rows ({@link #backends}) are views over these; {@link #close} frees them.
 *
 * <p>Cold mode rotates over {@code floor(96 MiB / bytes of one copy) + 1} copies, so the weights of
 * a call were last touched at least 96 MiB of weight reads ago: three times the 32 MiB L3 of the CI
 * machine. Each backend counts its own bytes (int4 codes and scales for ours and MatMulNBits, fp32
 * for the dense peer), and each ONNX Runtime copy is its own session with its own initializers, all
 * sessions on one global thread pool ({@link OnnxRuntimeEnvironment}).
 */
final class ShapeBackends implements AutoCloseable {
  /** Cold mode reads at least this many bytes of other weights between two uses of a copy. */
  static final long COLD_BYTES = 96L << 20;

  /** The group size of issue 3's layers (MatMulNBits' block size). */
  static final int GROUP = 128;

  /** The scalar references: run only when {@code --kernels} names them (they take minutes). */
  static final Set<String> REFERENCES = Set.of("ScalarW4A16Kernel", "ScalarW4A8Kernel");

  /** MatMulNBits' accuracy levels: 4 quantizes A to int8 (W4A8-like), 0 runs fp32 math. */
  static final int ACCURACY_INT8 = 4;

  static final int ACCURACY_FP32 = 0;

  /** A kernel left out of the benchmark and why; printed once per distinct reason. */
  record Skip(String kernel, DType act, QuantScheme scheme, String reason) {}

  /** Our kernel on this shape: one prepared layer per weight copy. */
  private record OurLayers(String kernel, DType act, QuantScheme scheme, List<Q4Linear> copies) {}

  /**
   * The buffers of one M. The direct buffers behind ONNX Runtime's tensors are held here: the
   * tensors point into them, and a collected buffer would leave them pointing at freed memory.
   */
  private record Buffers(
      Map<DType, float[]> xByAct,
      float[] out,
      FloatBuffer inputBuffer,
      FloatBuffer outputBuffer,
      OnnxTensor input,
      OnnxTensor output) {}

  private final BenchShape shape;
  private final int threads;
  private final BenchWeights weights;
  private final OrtEnvironment env;
  private final OrtSession.SessionOptions sessionOptions;
  private final List<OrtSession> acc4 = new ArrayList<>();
  private final List<OrtSession> acc0 = new ArrayList<>();
  private final List<OrtSession> dense = new ArrayList<>();
  private final List<OurLayers> ours = new ArrayList<>();
  private final List<Skip> skips = new ArrayList<>();
  private final Map<Integer, Buffers> buffers = new HashMap<>();
  private final long seed;

  private ShapeBackends(BenchShape shape, int threads, long seed) throws OrtException {
    this.shape = shape;
    this.threads = threads;
    this.seed = seed;
    this.weights = BenchWeights.random(shape.k(), shape.n(), GROUP, seed);
    this.env = OnnxRuntimeEnvironment.get(threads);
    this.sessionOptions = OnnxRuntimeEnvironment.sessionOptions();
  }

  /**
   * Builds the layers and sessions for {@code shape}.
   *
   * @param acts activation dtypes our kernels run in
   * @param named the kernels {@code --kernels} named, or null for all but the references
   */
  static ShapeBackends create(
      BenchShape shape, int threads, List<DType> acts, Set<String> named, long seed)
      throws OrtException {
    ShapeBackends s = new ShapeBackends(shape, threads, seed);
    try {
      s.build(acts, named);
      return s;
    } catch (OrtException | RuntimeException e) {
      s.close();
      throw e;
    }
  }

  /** How many copies cold mode rotates over for a backend reading {@code bytes} per call. */
  static int coldCopies(long bytes) {
    return Math.toIntExact(COLD_BYTES / bytes + 1);
  }

  private int copiesNeeded(long bytes) {
    return shape.modes().contains(BenchShape.Mode.COLD) ? coldCopies(bytes) : 1;
  }

  private void build(List<DType> acts, Set<String> named) throws OrtException {
    int int4Copies = copiesNeeded(weights.packedBytes());
    int denseCopies = copiesNeeded(weights.denseBytes());

    List<BenchWeights> copies = new ArrayList<>();
    copies.add(weights);
    for (DType act : acts) {
      for (KernelCatalog.Entry e : KernelCatalog.PRIORITY) {
        if (named != null ? !named.contains(e.name()) : REFERENCES.contains(e.name())) {
          continue;
        }
        LinearKernel kernel;
        try {
          kernel = KernelCatalog.load(e);
        } catch (KernelCatalog.KernelUnavailableException u) {
          skips.add(new Skip(e.name(), act, null, u.getMessage()));
          continue;
        }
        QuantScheme scheme = kernel.capabilities().scheme();
        LinearLayerConfig config = weights.config(scheme, act);
        Acceptance a = kernel.canImplement(config);
        if (!a.accepted()) {
          skips.add(new Skip(e.name(), act, scheme, a.reason()));
          continue;
        }
        while (copies.size() < int4Copies) {
          copies.add(weights.copy());
        }
        KernelOptions options = KernelOptions.defaults().withForced(e.name()).withThreads(threads);
        List<Q4Linear> layers = new ArrayList<>();
        for (int i = 0; i < int4Copies; i++) {
          layers.add(Q4Linear.create(copies.get(i).layer(config), options));
        }
        ours.add(new OurLayers(e.name(), act, scheme, layers));
      }
    }

    byte[] b = weights.matMulNBitsWeights();
    float[] scales = weights.matMulNBitsScales();
    int k = shape.k();
    int n = shape.n();
    byte[] model4 = OnnxModelWriter.matMulNBits(k, n, GROUP, ACCURACY_INT8, b, scales);
    byte[] model0 = OnnxModelWriter.matMulNBits(k, n, GROUP, ACCURACY_FP32, b, scales);
    // Each session holds its own copy of the initializers: one session per weight copy.
    for (int i = 0; i < int4Copies; i++) {
      acc4.add(env.createSession(model4, sessionOptions));
      acc0.add(env.createSession(model0, sessionOptions));
    }
    byte[] modelDense = OnnxModelWriter.matMul(k, n, weights.dequantized());
    for (int i = 0; i < denseCopies; i++) {
      dense.add(env.createSession(modelDense, sessionOptions));
    }
  }

  /** Kernels left out, with the reason. */
  List<Skip> skips() {
    return skips;
  }

  BenchWeights weights() {
    return weights;
  }

  /**
   * The backends of row (m, mode), peers first: ORT MatMulNBits at accuracy level 4 and 0, ORT fp32
   * MatMul, then our kernels.
   */
  List<Backend> backends(int m, BenchShape.Mode mode) throws OrtException {
    Buffers buf = buffers(m);
    boolean cold = mode == BenchShape.Mode.COLD;
    List<Backend> out = new ArrayList<>();
    long packed = weights.packedBytes();
    out.add(ort(Backend.ORT_ACC4, "ORT nbits acc4", "W4A8", acc4, cold, packed, buf));
    out.add(ort(Backend.ORT_ACC0, "ORT nbits acc0", "W4A16", acc0, cold, packed, buf));
    out.add(
        ort(Backend.ORT_DENSE, "ORT fp32 MatMul", "fp32", dense, cold, weights.denseBytes(), buf));
    for (OurLayers o : ours) {
      List<Q4Linear> layers = cold ? o.copies() : o.copies().subList(0, 1);
      Q4Linear[] rotation = layers.toArray(Q4Linear[]::new);
      float[] x = buf.xByAct().get(o.act());
      float[] y = buf.out();
      int[] next = {0};
      Backend.Call call =
          rotation.length == 1
              ? () -> rotation[0].apply(x, m, y)
              : () -> {
                int i = next[0];
                rotation[i].apply(x, m, y);
                next[0] = i + 1 == rotation.length ? 0 : i + 1;
              };
      out.add(
          new Backend(
              Backend.OURS,
              shortName(o.kernel()) + " " + shortAct(o.act()),
              o.kernel(),
              o.act().torchName(),
              o.scheme().name(),
              packed,
              rotation.length,
              call,
              y::clone));
    }
    return out;
  }

  private Backend ort(
      String id,
      String label,
      String scheme,
      List<OrtSession> sessions,
      boolean cold,
      long bytes,
      Buffers buf) {
    OrtSession[] rotation = (cold ? sessions : sessions.subList(0, 1)).toArray(OrtSession[]::new);
    Map<String, OnnxTensor> inputs = Map.of(OnnxModelWriter.INPUT, buf.input());
    // Pinned: ONNX Runtime writes into the preallocated output, as our kernels do; the Result does
    // not own it, so closing the Result leaves it open.
    Map<String, OnnxTensor> outputs = Map.of(OnnxModelWriter.OUTPUT, buf.output());
    int[] next = {0};
    Backend.Call call =
        () -> {
          int i = next[0];
          // The Result holds no output of its own (the output is pinned); close it at once.
          rotation[i].run(inputs, outputs).close();
          next[0] = i + 1 == rotation.length ? 0 : i + 1;
        };
    return new Backend(
        id,
        label,
        null,
        DType.F32.torchName(),
        scheme,
        bytes,
        rotation.length,
        call,
        () -> {
          float[] y = new float[buf.outputBuffer().capacity()];
          buf.outputBuffer().get(0, y);
          return y;
        });
  }

  private Buffers buffers(int m) throws OrtException {
    Buffers b = buffers.get(m);
    if (b != null) {
      return b;
    }
    int k = shape.k();
    int n = shape.n();
    float[] x = BenchWeights.activations(m, k, DType.F32, seed + m);
    Map<DType, float[]> xByAct = new HashMap<>();
    for (OurLayers o : ours) {
      xByAct.computeIfAbsent(
          o.act(),
          act -> {
            float[] r = new float[x.length];
            for (int i = 0; i < r.length; i++) {
              r[i] = act.round(x[i]);
            }
            return r;
          });
    }
    FloatBuffer in = direct(x.length);
    in.put(x).rewind();
    FloatBuffer outBuf = direct(m * n);
    OnnxTensor input = OnnxTensor.createTensor(env, in, new long[] {m, k});
    OnnxTensor output;
    try {
      output = OnnxTensor.createTensor(env, outBuf, new long[] {m, n});
    } catch (OrtException e) {
      input.close();
      throw e;
    }
    b = new Buffers(xByAct, new float[Math.multiplyExact(m, n)], in, outBuf, input, output);
    buffers.put(m, b);
    return b;
  }

  private static FloatBuffer direct(int floats) {
    return ByteBuffer.allocateDirect(Math.multiplyExact(floats, Float.BYTES))
        .order(ByteOrder.nativeOrder())
        .asFloatBuffer();
  }

  private static String shortName(String kernel) {
    return kernel.endsWith("Kernel")
        ? kernel.substring(0, kernel.length() - "Kernel".length())
        : kernel;
  }

  private static String shortAct(DType act) {
    return switch (act) {
      case F16 -> "f16";
      case BF16 -> "bf16";
      case F32 -> "f32";
    };
  }

  @Override
  public void close() {
    for (Buffers b : buffers.values()) {
      b.input().close();
      b.output().close();
    }
    buffers.clear();
    for (List<OrtSession> list : List.of(acc4, acc0, dense)) {
      for (OrtSession s : list) {
        try {
          s.close();
        } catch (OrtException e) {
          throw new IllegalStateException("closing an ONNX Runtime session: " + e.getMessage(), e);
        }
      }
      list.clear();
    }
    for (OurLayers o : ours) {
      o.copies().forEach(Q4Linear::close);
    }
    ours.clear();
    sessionOptions.close();
  }
}
