package io.q4spark.kernels.onednn;

import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_ATTR_SCALES;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_ATTR_ZERO_POINTS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SCRATCHPAD;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_WEIGHTS;
import static org.bytedeco.dnnl.global.dnnl.dnnl_quantization_mode_static_sazp;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.dnnl.matmul;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.dnnl.stream;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * One int4-weight matmul in oneDNN, shared by the W4A16 and W4A8 kernels: the weights, scales and
 * zero points in oneDNN-owned memory (written once), a primitive per row count, and per-thread
 * native buffers for the activations, the output and oneDNN's scratchpad.
 *
 * <pre>
 *   src      f32 [M, K] (W4A16), or s8 [M, K] with f32 scales [M, 1] (W4A8: mask 3, groups {1, K})
 *   weights  u4  [K, N] in {@link OneDnnU4Layout}
 *   scales   f32 [K/G, N]                        set_scales(WEIGHTS, mask 3, groups {G, 1})
 *   zeros    u4  [K/G, N] (mask 3, groups {G, 1}), or one s8 zero point 8 (mask 0)
 *   dst      f32 [M, N]
 *   attr     fpmath_mode(strict, apply_to_int = true): weights are decompressed to f32, never to
 *            bf16 or f16, so the math is the reference's fp32 math in another summation order
 * </pre>
 *
 * A primitive is created for each row count it sees (oneDNN picks its reference implementation,
 * hundreds of times slower, for a runtime M: {@code DNNL_RUNTIME_DIM_VAL} gave {@code ref:any} on
 * the AVX2 machine). Calls with more than {@link #MAX_ROWS} rows run in chunks, so a layer holds
 * primitives for at most {@link #PRIMITIVES} row counts. Primitives run with a user scratchpad from
 * the calling thread's buffers, so concurrent calls on one layer share nothing mutable.
 */
final class OneDnnMatmul implements AutoCloseable {
  /**
   * Rows per oneDNN call: at 512 rows a call is compute-bound (K = N = 4096 takes about 110 ms on
   * the AVX2 machine), so chunking loses nothing, and it bounds the per-thread buffers (8 MiB of
   * fp32 activations at K = 4096) and the number of distinct primitives.
   */
  static final int MAX_ROWS = 512;

  /**
   * Row counts whose primitives a layer keeps (least recently used first out): a Spark batch brings
   * one or two row counts (full batches and the last one), a decoder a few more.
   */
  static final int PRIMITIVES = 16;

  /** The zero point of symmetric layers: uint4b8 codes and int4 values stored as value + 8. */
  static final int SYMMETRIC_ZERO = 8;

  /**
   * What the primitive computes, enough to create it for any row count.
   *
   * @param k input features
   * @param n output features
   * @param groupSize input features per scale (and zero point), K for one group
   * @param int8Source s8 activations with a per-row scale and s4 weights (W4A8), else f32
   *     activations and u4 weights
   * @param groupedZeros per-group u4 zero points, else the one zero point {@link #SYMMETRIC_ZERO}
   *     (u4 weights only: s4 weights hold the values themselves and take no zero point)
   */
  record Shape(int k, int n, int groupSize, boolean int8Source, boolean groupedZeros) {
    int groups() {
      return k / groupSize;
    }

    memory.data_type sourceType() {
      return int8Source ? memory.data_type.s8 : memory.data_type.f32;
    }

    /**
     * s4 for W4A8: measured on the GPU host's AMX CPU, any weight zero point makes oneDNN 3.13 fall
     * back to {@code ref_int8:any} for s8 sources, while s4 weights with grouped scales run on
     * {@code brg_matmul:avx10_1_512_amx}. u4 (with zero points) for f32 sources.
     */
    memory.data_type weightType() {
      return int8Source ? memory.data_type.s4 : memory.data_type.u4;
    }

    /** One line for messages, e.g. {@code f32 [1, 4096] x u4 [4096, 4096] ... -> f32 [1, 4096]}. */
    String describe(long rows) {
      return sourceType()
          + " ["
          + rows
          + ", "
          + k
          + "]"
          + (int8Source ? " (f32 scale per row)" : "")
          + " x "
          + weightType()
          + " ["
          + k
          + ", "
          + n
          + "] (f32 scales per group of "
          + groupSize
          + (int8Source
              ? ""
              : groupedZeros ? ", u4 zero points per group" : ", zero point " + SYMMETRIC_ZERO)
          + ") -> f32 ["
          + rows
          + ", "
          + n
          + "]";
    }

    /** The primitive descriptor for {@code rows} rows; the caller closes it. */
    matmul.primitive_desc primitiveDesc(long rows) {
      return primitiveDesc(rows, memory.format_tag.ab);
    }

    /**
     * The primitive descriptor with the weights in {@code weightsTag} ({@code any} lets oneDNN
     * choose; tests read its choice).
     */
    matmul.primitive_desc primitiveDesc(long rows, memory.format_tag weightsTag) {
      try (memory.desc src = OneDnn.rowMajor(rows, k, sourceType());
          memory.desc weights = new memory.desc(new long[] {k, n}, weightType(), weightsTag);
          memory.desc dst = OneDnn.rowMajor(rows, n, memory.data_type.f32);
          primitive_attr attr = attributes()) {
        return OneDnn.matmul(src, weights, dst, attr, describe(rows));
      }
    }

    private primitive_attr attributes() {
      primitive_attr attr = new primitive_attr();
      try {
        attr.set_scratchpad_mode(dnnl.scratchpad_mode.user);
        attr.set_fpmath_mode(dnnl.fpmath_mode.strict, true);
        if (int8Source) {
          attr.set_scales(
              DNNL_ARG_SRC,
              0b11,
              new long[] {1, k},
              memory.data_type.f32,
              false,
              dnnl_quantization_mode_static_sazp);
        }
        attr.set_scales(
            DNNL_ARG_WEIGHTS,
            0b11,
            new long[] {groupSize, 1},
            memory.data_type.f32,
            false,
            dnnl_quantization_mode_static_sazp);
        if (groupedZeros) {
          attr.set_zero_points(
              DNNL_ARG_WEIGHTS, 0b11, new long[] {groupSize, 1}, memory.data_type.u4, false);
        } else if (!int8Source) {
          attr.set_zero_points(DNNL_ARG_WEIGHTS, 0, new long[] {}, memory.data_type.s8, false);
        }
        return attr;
      } catch (RuntimeException e) {
        attr.close();
        throw new OneDnn.OneDnnException(
            "primitive_attr (scales, zero points, fpmath) for " + describe(1), e.getMessage(), e);
      }
    }
  }

  /** Implementations oneDNN picks, by shape and row count: selection asks the same layers often. */
  private static final Map<String, String> IMPLEMENTATIONS = new ConcurrentHashMap<>();

  /**
   * The implementation oneDNN picks for {@code shape} at {@code rows} rows, e.g. {@code
   * brg_matmul:avx2} or {@code ref_int8:any}; throws {@link OneDnn.OneDnnException} when oneDNN has
   * none.
   */
  /**
   * Whether oneDNN runs {@code shape} on an AVX-512 / AVX10 / AMX brgemm kernel (asked at {@link
   * #MAX_ROWS} rows): where the oneDNN kernels take calls of many rows from the Vector API ones.
   */
  static boolean hasWideBrgemm(Shape shape) {
    try {
      return OneDnn.isWideBrgemm(implementation(shape, MAX_ROWS));
    } catch (OneDnn.OneDnnException e) {
      return false;
    }
  }

  static String implementation(Shape shape, int rows) {
    return IMPLEMENTATIONS.computeIfAbsent(
        shape + "@" + rows,
        key -> {
          try (matmul.primitive_desc pd = shape.primitiveDesc(rows)) {
            return OneDnn.implementation(pd);
          }
        });
  }

  /** A primitive with its implementation name and scratchpad descriptor (empty when none). */
  private record Primitive(matmul matmul, String implementation, memory.desc scratchpad) {
    void close() {
      matmul.close();
      scratchpad.close();
    }
  }

  private final Shape shape;
  private final int threads;
  private final memory weights;
  private final memory scales;
  private final memory zeros;
  private final Map<Integer, Primitive> primitives =
      new LinkedHashMap<>(PRIMITIVES, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Integer, Primitive> eldest) {
          // Not closed here: another thread may be running it; JavaCPP frees it once unreachable.
          return size() > PRIMITIVES;
        }
      };
  private boolean closed;

  /**
   * @param u4Weights [K, N] in {@link OneDnnU4Layout}
   * @param scales [K/G, N] row-major
   * @param u4Zeros [K/G, N] in {@link OneDnnU4Layout}, or null for {@link #SYMMETRIC_ZERO}
   * @param threads OpenMP threads per call
   */
  OneDnnMatmul(Shape shape, byte[] u4Weights, float[] scales, byte[] u4Zeros, int threads) {
    assert u4Weights.length == (long) shape.k() * shape.n() / 2;
    assert scales.length == (long) shape.groups() * shape.n();
    assert (u4Zeros != null) == shape.groupedZeros();
    this.shape = shape;
    this.threads = threads;
    List<memory> made = new ArrayList<>();
    try {
      this.weights = owned(made, shape.k(), shape.n(), shape.weightType());
      new BytePointer(weights.get_data_handle()).put(u4Weights);
      this.scales = owned(made, shape.groups(), shape.n(), memory.data_type.f32);
      new FloatPointer(this.scales.get_data_handle()).put(scales);
      if (u4Zeros != null) {
        this.zeros = owned(made, shape.groups(), shape.n(), memory.data_type.u4);
        new BytePointer(zeros.get_data_handle()).put(u4Zeros);
      } else if (shape.int8Source()) {
        this.zeros = null;
      } else {
        this.zeros = owned(made, 1, 1, memory.data_type.s8);
        new BytePointer(zeros.get_data_handle()).put((byte) SYMMETRIC_ZERO);
      }
    } catch (RuntimeException e) {
      made.forEach(Pointer::close);
      throw e;
    }
  }

  /** A memory oneDNN allocates (aligned as it likes) and frees when it is closed. */
  private static memory owned(List<memory> made, long rows, long cols, memory.data_type type) {
    try (memory.desc d = OneDnn.rowMajor(rows, cols, type)) {
      memory m = new memory(d, OneDnn.cpu());
      made.add(m);
      return m;
    } catch (RuntimeException e) {
      throw new OneDnn.OneDnnException(
          "memory(" + type + " [" + rows + ", " + cols + "])", e.getMessage(), e);
    }
  }

  /** The implementation of this layer's primitive for {@code rows} rows (created if needed). */
  String implementation(int rows) {
    return primitive(rows).implementation();
  }

  private synchronized Primitive primitive(int rows) {
    if (closed) {
      throw new IllegalStateException("the oneDNN layer " + shape.describe(rows) + " is closed");
    }
    Primitive p = primitives.get(rows);
    if (p == null) {
      // oneDNN sizes its parallel work by the creating thread's OpenMP thread count.
      OpenMp.setNumThreads(threads);
      try (matmul.primitive_desc pd = shape.primitiveDesc(rows)) {
        matmul m;
        try {
          m = new matmul(pd);
        } catch (RuntimeException e) {
          throw new OneDnn.OneDnnException(
              "matmul primitive for " + shape.describe(rows), e.getMessage(), e);
        }
        p = new Primitive(m, OneDnn.implementation(pd), pd.scratchpad_desc());
      }
      primitives.put(rows, p);
    }
    return p;
  }

  /**
   * Runs the matmul on the first {@code rows} (at most {@link #MAX_ROWS}) rows of {@code scratch}'s
   * source (and, for s8 sources, its per-row scales), writing {@code scratch}'s output.
   */
  void run(Scratch scratch, int rows) {
    run(scratch, rows, shape.int8Source() ? scratch.int8Source : scratch.source);
  }

  /**
   * As {@link #run(Scratch, int)}, reading the source rows from {@code source} (f32 sources only:
   * rows in native memory the caller owns, such as an Arrow buffer).
   */
  void run(Scratch scratch, int rows, Pointer source) {
    assert rows > 0 && rows <= MAX_ROWS;
    Primitive p = primitive(rows);
    OpenMp.setNumThreads(threads);
    try (memory.desc srcDesc = OneDnn.rowMajor(rows, shape.k(), shape.sourceType());
        memory.desc dstDesc = OneDnn.rowMajor(rows, shape.n(), memory.data_type.f32);
        memory src = new memory(srcDesc, OneDnn.cpu(), source);
        memory dst = new memory(dstDesc, OneDnn.cpu(), scratch.output);
        memory pad =
            new memory(
                p.scratchpad(), OneDnn.cpu(), scratch.scratchpad(p.scratchpad().get_size()));
        memory.desc rowScaleDesc =
            shape.int8Source() ? OneDnn.rowMajor(rows, 1, memory.data_type.f32) : null;
        memory rowScales =
            shape.int8Source()
                ? new memory(rowScaleDesc, OneDnn.cpu(), scratch.sourceScales)
                : null;
        IntMemoryMap args = new IntMemoryMap()) {
      args.put(DNNL_ARG_SRC, src);
      args.put(DNNL_ARG_WEIGHTS, weights);
      args.put(DNNL_ARG_DST, dst);
      args.put(DNNL_ARG_SCRATCHPAD, pad);
      args.put(DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS, scales);
      if (zeros != null) {
        args.put(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_WEIGHTS, zeros);
      }
      if (rowScales != null) {
        args.put(DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC, rowScales);
      }
      stream s = scratch.stream();
      p.matmul().execute(s, args);
      s._wait();
    } catch (OneDnn.OneDnnException e) {
      throw e;
    } catch (RuntimeException e) {
      throw new OneDnn.OneDnnException(
          "matmul::execute (" + p.implementation() + ") of " + shape.describe(rows),
          e.getMessage(),
          e);
    }
  }

  Shape shape() {
    return shape;
  }

  /** Frees the weights and primitives; no call may be running on this layer. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    primitives.values().forEach(Primitive::close);
    primitives.clear();
    weights.close();
    scales.close();
    if (zeros != null) {
      zeros.close();
    }
  }

  /**
   * One thread's buffers, grown as needed and reused across calls and layers: native ones for the
   * source rows (f32 or s8), their scales, the output rows and oneDNN's scratchpad, a stream, and
   * heap ones for the W4A8 quantization stage.
   */
  static final class Scratch {
    private FloatPointer source = new FloatPointer(1);
    private BytePointer int8Source = new BytePointer(1);
    private FloatPointer sourceScales = new FloatPointer(1);
    private FloatPointer output = new FloatPointer(1);
    private BytePointer scratchpad = new BytePointer(1);
    private stream stream;
    private byte[] heapCodes = new byte[0];
    private float[] heapScales = new float[0];

    private static final ThreadLocal<Scratch> CURRENT = ThreadLocal.withInitial(Scratch::new);

    static Scratch current() {
      return CURRENT.get();
    }

    /** f32 source buffer of at least {@code size} values. */
    FloatPointer source(long size) {
      if (source.capacity() < size) {
        source.close();
        source = new FloatPointer(size);
      }
      return source;
    }

    /** s8 source buffer of at least {@code size} values. */
    BytePointer int8Source(long size) {
      if (int8Source.capacity() < size) {
        int8Source.close();
        int8Source = new BytePointer(size);
      }
      return int8Source;
    }

    /** Per-row scales of an s8 source, at least {@code size}. */
    FloatPointer sourceScales(long size) {
      if (sourceScales.capacity() < size) {
        sourceScales.close();
        sourceScales = new FloatPointer(size);
      }
      return sourceScales;
    }

    /** f32 output buffer of at least {@code size} values. */
    FloatPointer output(long size) {
      if (output.capacity() < size) {
        output.close();
        output = new FloatPointer(size);
      }
      return output;
    }

    /** Heap buffer for the int8 codes of a chunk, at least {@code size}. */
    byte[] heapCodes(int size) {
      if (heapCodes.length < size) {
        heapCodes = new byte[size];
      }
      return heapCodes;
    }

    /** Heap buffer for the per-row scales of a chunk, at least {@code size}. */
    float[] heapScales(int size) {
      if (heapScales.length < size) {
        heapScales = new float[size];
      }
      return heapScales;
    }

    private BytePointer scratchpad(long bytes) {
      // A zero-size scratchpad still gets a valid (unused) pointer.
      if (scratchpad.capacity() < bytes) {
        scratchpad.close();
        scratchpad = new BytePointer(bytes);
      }
      return scratchpad;
    }

    private stream stream() {
      if (stream == null) {
        stream = new stream(OneDnn.cpu());
      }
      return stream;
    }
  }
}
