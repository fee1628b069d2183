package io.q4spark.kernels.cuda;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Device-side timing for {@code q4spark bench gpu}: our kernels and cuBLAS measured the same way,
 * on one stream, with CUDA events around {@code callsPerRep} back-to-back calls that rotate over
 * {@code copies} copies of the weights (so that, with enough copies, every call reads its weights
 * from HBM, not from the 50 MB L2).
 *
 * <p>Before each timed repetition a {@code q4_sleep} kernel holds the stream while the host queues
 * every timed call; the calls then run back to back, and the events measure the GPU's time, not the
 * host's launch rate. A repetition's time divided by its calls is one sample.
 */
public final class CudaTiming implements AutoCloseable {
  /** Bytes of L2 on an H100; the cold copies together exceed twice this. */
  public static final long L2_BYTES = 50L << 20;

  /**
   * How long the sleep kernel holds the stream per queued call: ample for the host's launch path,
   * even before the JIT has compiled it.
   */
  private static final long SLEEP_NS_PER_CALL = 200_000;

  /** Untimed passes before the timed ones: the JIT compiles the launch path, workspaces grow. */
  private static final int WARMUP_PASSES = 3;

  private final CudaDevice device;
  private final CudaStream stream;
  private final CudaEvent start;
  private final CudaEvent end;
  private final CudaFunction sleep;

  public CudaTiming(CudaDevice device) {
    this.device = device;
    device.makeCurrent();
    this.stream = device.createStream();
    this.start = device.createEvent();
    this.end = device.createEvent();
    this.sleep = CudaPrograms.module(device, CudaSources.W4A16).function("q4_sleep");
  }

  /** Microseconds per call, one value per repetition. */
  public record Samples(double[] micros) {}

  /**
   * Device-to-device copy bandwidth, counting the bytes read and the bytes written, in 10^9 bytes
   * per second: the median over {@code reps} copies of {@code bytes}.
   */
  public double copyBandwidth(long bytes, int reps) {
    try (DeviceBuffer a = device.allocate(bytes);
        DeviceBuffer b = device.allocate(bytes)) {
      a.fill((byte) 1, stream);
      double[] gbs = new double[reps];
      for (int i = 0; i < reps; i++) {
        start.record(stream);
        // cuMemcpyDtoD runs on the legacy default stream, which waits for and holds up this
        // (blocking) stream: the events bracket the copy.
        device.driver().memcpyDtoD(b.address(), a.address(), bytes);
        end.record(stream);
        end.synchronize();
        gbs[i] = 2.0 * bytes / (CudaEvent.elapsedMillis(start, end) * 1e6);
      }
      java.util.Arrays.sort(gbs);
      return gbs[reps / 2];
    }
  }

  /**
   * Our kernel for {@code layer} ({@link CudaW4A16Kernel} for W4A16 layers, {@link CudaW4A8Kernel}
   * for W4A8) with its weights uploaded {@code copies} times, ready to be timed at any M.
   */
  public QuantizedCopies upload(QuantizedLinear layer, int copies) {
    LinearLayerConfig c = layer.config();
    List<CudaPreparedLinear> layers = new ArrayList<>();
    try {
      if (c.scheme() == QuantScheme.W4A16) {
        CudaW4A16Layout layout = CudaW4A16Layout.pack(layer);
        for (int i = 0; i < copies; i++) {
          layers.add(new CudaW4A16Kernel.Prepared(device, c, layout, stream));
        }
      } else {
        CudaW4A8Layout layout = CudaW4A8Layout.pack(layer);
        for (int i = 0; i < copies; i++) {
          layers.add(new CudaW4A8Kernel.Prepared(device, c, layout, stream));
        }
      }
    } catch (RuntimeException e) {
      layers.forEach(CudaPreparedLinear::close);
      throw e;
    }
    return new QuantizedCopies(c, layers);
  }

  /** Copies of one quantized layer on the device; see {@link #upload}. */
  public final class QuantizedCopies implements AutoCloseable {
    private final LinearLayerConfig config;
    private final List<CudaPreparedLinear> layers;

    private QuantizedCopies(LinearLayerConfig config, List<CudaPreparedLinear> layers) {
      this.config = config;
      this.layers = layers;
    }

    /** From the GEMM's input to its 16-bit output, rotating over the copies. */
    public Samples time(int rows, int callsPerRep, int reps) {
      int copies = layers.size();
      int inBytes = layers.get(0).gemmInputBytes();
      long elements = layers.get(0).gemmInputElements(rows);
      try (DeviceBuffer in = randomActivations(elements, inBytes == 2, config);
          DeviceBuffer out = device.allocate(2L * rows * config.n())) {
        return CudaTiming.this.time(
            i -> layers.get(i % copies).gemm(in.address(), rows, 0, out.address()),
            callsPerRep,
            reps);
      }
    }

    @Override
    public void close() {
      layers.forEach(CudaPreparedLinear::close);
    }
  }

  /**
   * cuBLAS fp16 dense, {@code C[M, N] = A[M, K] W[K, N]} in fp16 with fp32 accumulation ({@code
   * cublasGemmEx}, the default algorithm), over {@code copies} fp16 weight copies.
   */
  public Samples timeCublas(
      Cublas cublas, int k, int n, int rows, int copies, int callsPerRep, int reps) {
    MemorySegment handle = cublas.create();
    List<DeviceBuffer> weights = new ArrayList<>();
    try {
      cublas.setStream(handle, stream);
      for (int i = 0; i < copies; i++) {
        weights.add(randomHalves((long) k * n, 0.02f, 11 + i));
      }
      try (DeviceBuffer a = randomHalves((long) rows * k, 1f, 7);
          DeviceBuffer out = device.allocate(2L * rows * n)) {
        return time(
            i ->
                cublas.gemmEx(
                    handle,
                    Cublas.CUBLAS_OP_N,
                    Cublas.CUBLAS_OP_N,
                    n,
                    rows,
                    k,
                    1f,
                    weights.get(i % copies).address(),
                    Cublas.CUDA_R_16F,
                    n,
                    a.address(),
                    Cublas.CUDA_R_16F,
                    k,
                    0f,
                    out.address(),
                    Cublas.CUDA_R_16F,
                    n,
                    Cublas.CUBLAS_COMPUTE_32F,
                    Cublas.CUBLAS_GEMM_DEFAULT),
            callsPerRep,
            reps);
      }
    } finally {
      weights.forEach(DeviceBuffer::close);
      cublas.destroy(handle);
    }
  }

  private interface Call {
    void run(int index);
  }

  private Samples time(Call call, int callsPerRep, int reps) {
    for (int i = 0; i < WARMUP_PASSES * callsPerRep; i++) {
      call.run(i);
    }
    stream.synchronize();
    double[] micros = new double[reps];
    for (int r = 0; r < reps; r++) {
      try (Arena a = Arena.ofConfined()) {
        sleep.launch(
            Dim3.of(1),
            Dim3.of(1),
            0,
            stream,
            KernelArgs.of(a).i64(SLEEP_NS_PER_CALL * callsPerRep));
      }
      start.record(stream);
      for (int i = 0; i < callsPerRep; i++) {
        call.run(r * callsPerRep + i);
      }
      end.record(stream);
      end.synchronize();
      micros[r] = CudaEvent.elapsedMillis(start, end) * 1000.0 / callsPerRep;
    }
    return new Samples(micros);
  }

  private DeviceBuffer randomActivations(long count, boolean half, LinearLayerConfig c) {
    if (half) {
      return randomHalves(count, 1f, 3);
    }
    DeviceBuffer b = device.allocate(4 * count);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment host = arena.allocate(JAVA_FLOAT, count);
      SplittableRandom r = new SplittableRandom(5);
      for (long i = 0; i < count; i++) {
        host.setAtIndex(JAVA_FLOAT, i, c.actType().round((float) (r.nextDouble() * 2 - 1)));
      }
      b.copyFrom(host);
    }
    return b;
  }

  /** {@code count} fp16 values uniform in [-amplitude, amplitude). */
  private DeviceBuffer randomHalves(long count, float amplitude, long seed) {
    DeviceBuffer b = device.allocate(2 * count);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment host = arena.allocate(2 * count);
      SplittableRandom r = new SplittableRandom(seed);
      for (long i = 0; i < count; i++) {
        float v = (float) (r.nextDouble() * 2 - 1) * amplitude;
        host.setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT, i, Float.floatToFloat16(v));
      }
      b.copyFrom(host);
    }
    return b;
  }

  @Override
  public void close() {
    start.close();
    end.close();
    stream.close();
  }
}
