package io.q4spark.kernels.cuda;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * What the CUDA kernels share once a layer is on the device: the weights uploaded once, and the
 * calls' plumbing. A call borrows a lane from the device ({@link CudaLanes}: a stream with device
 * scratch that grows to the largest batch seen and pinned host staging through which {@code
 * float[]} rows travel) and gives it back when it returns, so layers share scratch rather than each
 * keeping its own. A call of more than {@link #OVERLAP_CHUNK_ROWS} rows runs in chunks on two
 * lanes, so that one chunk's copies overlap the other's kernels. Activations go to the device as
 * fp32 (the values of the activation dtype Spark's float arrays and Arrow buffers hold) and results
 * come back as fp32; the conversions run on the device.
 *
 * <p>Entry points: {@link #apply(float[], int, float[], float[])} for Java arrays, {@link
 * #apply(MemorySegment, int, float[], float[])} for off-heap rows (an Arrow buffer's memory: staged
 * by native copies, chunked and overlapped like arrays) and {@link #apply(MemorySegment, int,
 * MemorySegment)} from native memory to native memory, copied straight from and to their addresses.
 * Calls on one prepared layer are serialised; device out-of-memory surfaces as {@link
 * CudaOutOfMemoryException} with the sizes, after which the caller may retry with fewer rows.
 */
abstract class CudaPreparedLinear implements PreparedLinear {
  /** Threads per block of the element-wise kernels (conversions, reductions). */
  static final int ELEMENTWISE_THREADS = 256;

  protected final CudaDevice device;
  protected final LinearLayerConfig config;
  private final List<DeviceBuffer> weights = new ArrayList<>();

  /** The stream a benchmark put this layer on, or null: calls borrow the device's lanes. */
  private final CudaStream fixedStream;

  /**
   * The layer's own lane: on {@link #fixedStream} when there is one, else made for launches outside
   * a call (a benchmark timing {@link #gemm} directly); null until needed.
   */
  private CudaLanes.Lane own;

  /** The lane the current launches go to, during a call. */
  private CudaLanes.Lane lane;

  private final java.util.Map<String, CudaFunction> functions = new java.util.HashMap<>();
  private final java.util.Map<String, Integer> sharedLimits = new java.util.HashMap<>();
  private final java.util.Map<String, Integer> occupancy = new java.util.HashMap<>();
  private float[] biasHost;
  private DeviceBuffer biasDevice;
  private boolean closed;

  /**
   * @param stream the stream every call is queued on, or null for a stream of its own (benchmarks
   *     put several layers on one stream so that events time them in order)
   */
  CudaPreparedLinear(CudaDevice device, LinearLayerConfig config, CudaStream stream) {
    this.device = device;
    this.config = config;
    this.fixedStream = stream;
  }

  /** The stream launches are queued on: the current lane's. */
  protected CudaStream stream() {
    return current().stream();
  }

  private CudaLanes.Lane current() {
    return lane != null ? lane : ownLane();
  }

  private CudaLanes.Lane ownLane() {
    if (own == null) {
      own =
          fixedStream != null
              ? new CudaLanes.Lane(device, fixedStream, false)
              : new CudaLanes.Lane(device, device.createStream(), true);
    }
    return own;
  }

  /** A call's first lane: the layer's own on a benchmark's stream, else one of the device's. */
  private CudaLanes.Lane borrow() {
    return fixedStream != null ? ownLane() : device.lanes().acquire();
  }

  private void giveBack(CudaLanes.Lane l) {
    if (l != own) {
      device.lanes().release(l);
    }
  }

  @Override
  public LinearLayerConfig config() {
    return config;
  }

  /** Uploads one of the layer's constant arrays, kept until {@link #close}; null for null. */
  protected DeviceBuffer upload(int[] values) {
    return values == null ? null : upload(arena -> arena.allocateFrom(JAVA_INT, values));
  }

  /** As {@link #upload(int[])}. */
  protected DeviceBuffer upload(short[] values) {
    return values == null ? null : upload(arena -> arena.allocateFrom(JAVA_SHORT, values));
  }

  /** As {@link #upload(int[])}. */
  protected DeviceBuffer upload(float[] values) {
    return values == null ? null : upload(arena -> arena.allocateFrom(JAVA_FLOAT, values));
  }

  private DeviceBuffer upload(java.util.function.Function<Arena, MemorySegment> staged) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment host = staged.apply(arena);
      DeviceBuffer b = device.allocate(Math.max(1, host.byteSize()));
      weights.add(b);
      b.copyFrom(host);
      return b;
    }
  }

  /**
   * Act-order: queues the gather of {@code rows} fp32 rows at {@code x} into the order of the
   * sorted weight rows ({@code permutation}, from the layout) and returns the gathered rows'
   * address; returns {@code x} itself for a layer without act-order (null permutation).
   */
  protected long gatherActOrder(CudaModule module, DeviceBuffer permutation, long x, int rows) {
    if (permutation == null) {
      return x;
    }
    int k = config.k();
    long count = (long) rows * k;
    DeviceBuffer gathered = scratch("gathered", 4 * count);
    try (Arena a = launchArena()) {
      elementwise(
          module,
          "q4_gather_columns",
          count,
          KernelArgs.of(a).ptr(x).ptr(permutation).ptr(gathered).i32(rows).i32(k));
    }
    return gathered.address();
  }

  /** A device buffer of at least {@code bytes} for {@code role}, reused across calls. */
  protected DeviceBuffer scratch(String role, long bytes) {
    return current().scratch(role, bytes);
  }

  /** The current lane's {@code type} ({@link CudaLanes.Lane#resource}). */
  protected <T extends AutoCloseable> T laneResource(
      Class<T> type, java.util.function.Supplier<T> make) {
    return current().resource(type, make);
  }

  /**
   * Runs the layer on {@code rows} fp32 rows at device address {@code x} into fp32 {@code y},
   * queued on {@link #stream()}.
   *
   * @param bias device address of N fp32 bias values, or 0
   */
  protected abstract void run(long x, int rows, long bias, long y);

  /**
   * The kernel proper, as benchmarks time it: from the GEMM's own input ({@link #gemmInputBytes()}
   * bytes per element: 16-bit activations for W4A16, fp32 for W4A8, which quantizes them) to the
   * 16-bit output, without the fp32 conversions around it.
   */
  abstract void gemm(long input, int rows, long bias, long out16);

  /** Bytes per activation element {@link #gemm} reads. */
  abstract int gemmInputBytes();

  /**
   * Activation elements {@link #gemm} reads for {@code rows} rows: {@code rows * K}, unless the
   * kernel reads a padded layout of its own.
   */
  long gemmInputElements(int rows) {
    return (long) rows * config.k();
  }

  /**
   * Rows per chunk when a call is split so that copies overlap compute: while the GPU runs one
   * chunk on one stream, the host stages the next chunk and queues its copy on the other.
   */
  static final int OVERLAP_CHUNK_ROWS = 1024;

  @Override
  public synchronized void apply(float[] x, int rows, float[] bias, float[] out) {
    int k = config.k();
    apply(
        (r0, m, host) -> MemorySegment.copy(x, r0 * k, host, JAVA_FLOAT, 0, m * k),
        rows,
        bias,
        out);
  }

  /**
   * Rows read from native memory (an Arrow buffer): each chunk is copied from there into pinned
   * staging by a native memory copy and on to the device, never through the Java heap; fp32 values
   * that the device rounds to the activation dtype.
   */
  @Override
  public synchronized void apply(MemorySegment x, int rows, float[] bias, float[] out) {
    long rowBytes = 4L * config.k();
    apply(
        (r0, m, host) -> MemorySegment.copy(x, r0 * rowBytes, host, 0, m * rowBytes),
        rows,
        bias,
        out);
  }

  @Override
  public boolean readsNativeMemory() {
    return true;
  }

  /** fp32 rows to the device and fp32 outputs back, as every entry point copies them. */
  @Override
  public long[] deviceTraffic(int rows) {
    return new long[] {4L * rows * config.k(), 4L * rows * config.n()};
  }

  /** Copies rows [r0, r0 + m) of a call's input into pinned staging. */
  @FunctionalInterface
  private interface RowSource {
    void stage(int r0, int m, MemorySegment host);
  }

  private void apply(RowSource x, int rows, float[] bias, float[] out) {
    checkOpen();
    if (rows == 0) {
      return; // no launch: the kernels assume at least one row
    }
    device.makeCurrent();
    long biasAt = biasAddress(bias);
    CudaLanes.Lane first = borrow();
    try {
      lane = first;
      if (rows <= OVERLAP_CHUNK_ROWS) {
        MemorySegment host =
            first.staging(Math.max(4L * rows * config.k(), 4L * rows * config.n()));
        runChunk(x, 0, rows, biasAt, host);
        first.stream().synchronize();
        MemorySegment.copy(host, JAVA_FLOAT, 0, out, 0, rows * config.n());
        return;
      }
      // Two lanes, alternating by chunk. Before a lane takes a new chunk, its previous chunk's
      // result is waited for and copied out, so the other lane's copies and kernels keep the GPU
      // busy.
      CudaLanes.Lane second = device.lanes().acquire();
      try {
        CudaLanes.Lane[] lanes = {first, second};
        long laneBytes =
            Math.max(4L * OVERLAP_CHUNK_ROWS * config.k(), 4L * OVERLAP_CHUNK_ROWS * config.n());
        MemorySegment[] hosts = {first.staging(laneBytes), second.staging(laneBytes)};
        int[] pendingRow = {-1, -1};
        int[] pendingRows = {0, 0};
        for (int c = 0, r0 = 0; r0 < rows; c++, r0 += OVERLAP_CHUNK_ROWS) {
          int l = c % 2;
          lane = lanes[l];
          finishChunk(pendingRow[l], pendingRows[l], hosts[l], out);
          int m = Math.min(OVERLAP_CHUNK_ROWS, rows - r0);
          runChunk(x, r0, m, biasAt, hosts[l]);
          pendingRow[l] = r0;
          pendingRows[l] = m;
        }
        for (int l = 0; l < 2; l++) {
          lane = lanes[l];
          finishChunk(pendingRow[l], pendingRows[l], hosts[l], out);
        }
      } finally {
        lane = first;
        device.lanes().release(second);
      }
    } finally {
      lane = null;
      giveBack(first);
    }
  }

  /** Stages rows [r0, r0 + m) of {@code x} in {@code host} and queues copy, layer, copy back. */
  private void runChunk(RowSource x, int r0, int m, long bias, MemorySegment host) {
    long xBytes = 4L * m * config.k();
    long yBytes = 4L * m * config.n();
    x.stage(r0, m, host);
    DeviceBuffer dx = scratch("x", xBytes);
    DeviceBuffer dy = scratch("y", yBytes);
    dx.copyFrom(host.asSlice(0, xBytes), 0, stream());
    run(dx.address(), m, bias, dy.address());
    dy.copyTo(host.asSlice(0, yBytes), 0, stream());
  }

  /** Waits for the current lane's chunk at row {@code r0} (if any) and copies its rows out. */
  private void finishChunk(int r0, int m, MemorySegment host, float[] out) {
    if (m == 0) {
      return;
    }
    stream().synchronize();
    MemorySegment.copy(host, JAVA_FLOAT, 0, out, r0 * config.n(), m * config.n());
  }

  /**
   * {@code out = layer(x)} for {@code rows} fp32 rows in native memory (for example an Arrow
   * buffer), copied to the device straight from their address (one synchronous copy each way, no
   * staging); {@code out} receives {@code rows * N} fp32 values.
   */
  public synchronized void apply(MemorySegment x, int rows, MemorySegment out) {
    apply(x, rows, null, out);
  }

  /** As {@link #apply(MemorySegment, int, MemorySegment)}, adding {@code bias} (N values). */
  public synchronized void apply(MemorySegment x, int rows, float[] bias, MemorySegment out) {
    checkOpen();
    device.makeCurrent();
    long xBytes = 4L * rows * config.k();
    long yBytes = 4L * rows * config.n();
    if (x.byteSize() < xBytes || out.byteSize() < yBytes) {
      throw new IllegalArgumentException(
          "layer "
              + config.layer()
              + ": "
              + rows
              + " rows need "
              + xBytes
              + " input bytes and "
              + yBytes
              + " output bytes, but the segments hold "
              + x.byteSize()
              + " and "
              + out.byteSize());
    }
    long biasAt = biasAddress(bias);
    CudaLanes.Lane first = borrow();
    try {
      lane = first;
      DeviceBuffer dx = scratch("x", xBytes);
      DeviceBuffer dy = scratch("y", yBytes);
      dx.copyFrom(x.asSlice(0, xBytes), 0, first.stream());
      run(dx.address(), rows, biasAt, dy.address());
      dy.copyTo(out.asSlice(0, yBytes), 0, first.stream());
      first.stream().synchronize();
    } finally {
      lane = null;
      giveBack(first);
    }
  }

  private long biasAddress(float[] bias) {
    if (bias == null) {
      return 0;
    }
    if (bias != biasHost) {
      if (biasDevice != null) {
        biasDevice.close();
      }
      biasDevice = device.allocate(4L * bias.length);
      try (Arena arena = Arena.ofConfined()) {
        biasDevice.copyFrom(arena.allocateFrom(JAVA_FLOAT, bias));
      }
      biasHost = bias;
    }
    return biasDevice.address();
  }

  /**
   * The split-K tile counters: at least {@code count} ints, zero between calls (the kernels reset
   * the ones they use), zeroed here when first allocated or grown.
   */
  protected DeviceBuffer counters(int count) {
    DeviceBuffer b = current().existing("counters");
    if (b == null || b.size() < 4L * count) {
      b = scratch("counters", 4L * count);
      b.fill((byte) 0, stream());
    }
    return b;
  }

  /** Resident blocks per SM of kernel {@code name} at this block size and shared memory, cached. */
  protected int blocksPerSm(CudaModule module, String name, int threads, int sharedBytes) {
    return occupancy.computeIfAbsent(
        name + "/" + threads + "/" + sharedBytes,
        key -> function(module, name, sharedBytes).maxActiveBlocksPerSm(threads, sharedBytes));
  }

  /** Launches element-wise kernel {@code function} of {@code module} over {@code count} items. */
  protected void elementwise(CudaModule module, String function, long count, KernelArgs args) {
    function(module, function, 0)
        .launch(Dim3.of(elementwiseGrid(count)), Dim3.of(ELEMENTWISE_THREADS), 0, stream(), args);
  }

  /**
   * Kernel {@code name} of {@code module}, looked up once, allowed {@code sharedBytes} of dynamic
   * shared memory (set once per size: above 48 KiB the driver wants it asked for).
   */
  protected CudaFunction function(CudaModule module, String name, int sharedBytes) {
    CudaFunction f = functions.computeIfAbsent(name, module::function);
    if (sharedBytes > sharedLimits.getOrDefault(name, 0)) {
      f.setMaxDynamicSharedMemory(sharedBytes);
      sharedLimits.put(name, sharedBytes);
    }
    return f;
  }

  /** Grid size of an element-wise kernel over {@code count} elements (grid-stride loops). */
  protected int elementwiseGrid(long count) {
    long blocks = (count + ELEMENTWISE_THREADS - 1) / ELEMENTWISE_THREADS;
    return (int) Math.max(1, Math.min(blocks, 8L * device.smCount()));
  }

  /** A confined arena for one launch's argument array. */
  protected static Arena launchArena() {
    return Arena.ofConfined();
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException(
          "layer " + config.layer() + ": " + kernel() + " was closed, its weights are freed");
    }
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    device.makeCurrent();
    try {
      if (own != null) {
        own.close();
      }
    } finally {
      weights.forEach(DeviceBuffer::close);
      if (biasDevice != null) {
        biasDevice.close();
      }
    }
  }
}
