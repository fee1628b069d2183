package io.q4spark.kernels.simd;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantizedLinear;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** A layer prepared for {@link SimdW4A16Kernel}; the algorithm is described there. */
final class SimdW4A16Layer implements PreparedLinear {
  private static final VectorSpecies<Float> FS = SimdW4A16Kernel.FS;
  private static final VectorSpecies<Integer> IS = SimdW4A16Kernel.IS;
  private static final int P = FS.length();

  /**
   * Halfway between the largest fp16 value, 65504, and the next step: here and above is infinity.
   */
  private static final float F16_OVERFLOW = 65520f;

  /**
   * Rows of the register-blocked micro-kernel: 6 rows x 2 panels = 12 accumulators, plus 2 weight
   * vectors and a broadcast, fill the 16 AVX2 registers (the 6x16 shape of BLAS sgemm kernels).
   * Calls with at least this many rows dequantize each weight once into a buffer and run it.
   */
  private static final int MICRO_ROWS = 6;

  /** Rows sharing each decoded word on the streaming path ({@link #fourRows}). */
  private static final int STREAM_BLOCK_ROWS = 4;

  /** 2^-4j: undoes the position of nibble j (j = 0..6) left in place by the decode mask. */
  private static final float[] NIBBLE_SCALE = new float[8];

  static {
    for (int j = 0; j < 7; j++) {
      NIBBLE_SCALE[j] = (float) Math.scalb(1.0, -4 * j);
    }
    NIBBLE_SCALE[7] = 1f; // the top nibble is shifted down, not masked in place
  }

  /**
   * {@link #NIBBLE_SCALE} repeated across a vector's lanes (position i takes NIBBLE_SCALE[i & 7]),
   * for prescaling whole vectors of activations; null where a vector is not a multiple of 8 lanes.
   */
  private static final FloatVector LANE_NIBBLE_SCALE;

  static {
    float[] pattern = new float[P];
    for (int i = 0; i < P; i++) {
      pattern[i] = NIBBLE_SCALE[i & 7];
    }
    LANE_NIBBLE_SCALE = P % 8 == 0 ? FloatVector.fromArray(FS, pattern, 0) : null;
  }

  private final LinearLayerConfig config;
  private final SimdPanels panels;
  private final int threads;

  /**
   * Scales in the activation dtype, panel-major: {@code scales[n0 * groups + g * P + n % P]} for
   * panel start {@code n0 = n - n % P}, so a panel's scales follow each other in memory and stream
   * with its weights (row-major [groups, N] puts the next group's 16 floats N * 4 bytes away, a
   * fresh page for every group of a cold layer).
   */
  private final float[] scales;

  /** zero * scale, laid out as {@link #scales}: one multiply-add per group (streaming path). */
  private final float[] zeroTimesScale;

  /** Zero codes as floats, laid out as {@link #scales} (buffered path). */
  private final float[] zeros;

  /**
   * fp32 activations: few rows take the streaming path with scales and zero points folded out of
   * the inner loop. fp16 and bf16 always take the buffered path, where each dequantized weight is
   * rounded to the activation dtype once per call, as vLLM's kernel rounds it.
   */
  private final boolean folded;

  /**
   * Bits {@link #roundBits} drops to round a dequantized weight to the activation dtype: {@link
   * #BF16_DROP} or {@link #F16_DROP} (unused for fp32).
   */
  private final int drop;

  /** Whether position == input feature for every k (no act-order, no padding). */
  private final boolean identityPositions;

  /** Group chunks: chunk c covers groups [chunkStart[c], chunkStart[c + 1]). */
  private final int[] chunkStart;

  SimdW4A16Layer(QuantizedLinear layer, int threads) {
    this(layer, threads, SimdPanels.of(layer, P));
  }

  /** As above, on {@code panels} already packed from {@code layer} (shared, not copied). */
  SimdW4A16Layer(QuantizedLinear layer, int threads, SimdPanels panels) {
    assert panels.p == P && panels.k == layer.config().k() && panels.n == layer.config().n();
    this.config = layer.config();
    this.threads = threads;
    this.panels = panels;
    boolean identity = panels.kPadded == config.k();
    for (int k = 0; identity && k < config.k(); k++) {
      identity = panels.positionOf[k] == k;
    }
    this.identityPositions = identity;
    int groups = panels.groups;
    int np = panels.nPadded;
    DType act = config.actType();
    this.scales = new float[groups * np];
    this.zeroTimesScale = new float[groups * np];
    this.zeros = new float[groups * np];
    this.folded = act == DType.F32;
    int codeZero = QuantizedLinear.codeZero(config.weightType());
    for (int g = 0; g < groups; g++) {
      for (int n = 0; n < config.n(); n++) {
        float s = act.round(layer.scales()[g * config.n() + n]);
        int z = layer.zeros() != null ? layer.zeros().code(g, n) : codeZero;
        int i = scaleIndex(g, n, groups);
        scales[i] = s;
        zeroTimesScale[i] = z * s;
        zeros[i] = z;
      }
    }
    int[] starts = new int[groups + 1];
    int count = 0;
    starts[count++] = 0;
    for (int g = 1; g < groups; g++) {
      if (panels.groupStart[g] - panels.groupStart[starts[count - 1]]
          >= SimdW4A16Kernel.CHUNK_POSITIONS) {
        starts[count++] = g;
      }
    }
    starts[count++] = groups;
    this.chunkStart = java.util.Arrays.copyOf(starts, count);
    this.drop = act == DType.BF16 ? BF16_DROP : F16_DROP;
    if (act == DType.F16) {
      for (int i = 0; i < scales.length; i++) {
        // |code - zero| <= 15: a larger product would round to infinity in fp16.
        if (Math.abs(scales[i]) * 15f >= F16_OVERFLOW) {
          throw new IllegalArgumentException(
              "layer "
                  + config.layer()
                  + ": scale "
                  + scales[i]
                  + " of group "
                  + i % (groups * P) / P
                  + ", output "
                  + (i / (groups * P) * P + i % P)
                  + " makes dequantized float16 weights overflow (15 * scale >= 65520)");
        }
      }
    }
  }

  /** Index of group g, output n in the panel-major scale arrays ({@link #scales}). */
  static int scaleIndex(int g, int n, int groups) {
    return (n - n % P) * groups + g * P + n % P;
  }

  @Override
  public LinearLayerConfig config() {
    return config;
  }

  @Override
  public String kernel() {
    return "SimdW4A16Kernel";
  }

  @Override
  public void apply(float[] x, int rows, float[] bias, float[] out) {
    // Row chunks bound the scratch memory (a chunk's activations and sums) whatever M is; each
    // chunk
    // dequantizes the weights again, a cost spread over its ROW_CHUNK rows.
    for (int r0 = 0; r0 < rows; r0 += ROW_CHUNK) {
      applyChunk(x, r0, Math.min(ROW_CHUNK, rows - r0), bias, out, r0);
    }
  }

  /**
   * Rows [r0, r0 + rows) of {@code x} into rows [o0, o0 + rows) of {@code out}; at most {@link
   * #ROW_CHUNK} rows, so the scratch stays bounded.
   */
  void applyChunk(float[] x, int r0, int rows, float[] bias, float[] out, int o0) {
    assert rows <= ROW_CHUNK;
    int kp = panels.kPadded;
    int k = config.k();
    int groups = panels.groups;
    // Fewer than MICRO_ROWS rows stream the weights, decoding them in registers: fp32 with the
    // scales folded out (oneRow, oneRowFourPanels, fourRows), fp16 / bf16 rounding each weight to
    // the dtype as the reference does (rowsRounded, rows in pairs). More rows share one buffered
    // dequantization per call. Measured at 4096x4096, 2 threads, hot, ms, streamed /
    // buffered: bf16 1.30 / 2.78 at 1 row, 1.62 / 3.77 at 2, 3.13 (3 rows streamed) and 3.36 (4)
    // against 5.15 and 5.73 for fp16 buffered at 3 and 4; fp16 2.01 / 2.79 at 1 row, 2.31 / 3.76
    // at 2, 4.37 / 5.15 at 3; at 5 rows 4.37 (bf16) and 6.43 (fp16) streamed, 6.2 buffered.
    boolean blocked = rows >= MICRO_ROWS;
    // The micro-kernel runs whole blocks: rows are padded with zeros to a multiple of MICRO_ROWS
    // (at most 5 wasted rows) rather than handled one at a time.
    int paddedRows =
        blocked && rows >= MICRO_ROWS ? (rows + MICRO_ROWS - 1) / MICRO_ROWS * MICRO_ROWS : rows;
    int np = panels.nPadded;
    Scratch scratch = SCRATCH.get();
    // Activations by position; on the streaming fp32 path each is pre-scaled by 2^-4j for its
    // nibble j (see oneRow). Padding positions and rows are 0.
    float[] xp = scratch.floats(0, paddedRows * kp);
    float[] groupSums = scratch.floats(1, rows * groups);
    float[] acc = scratch.floats(2, paddedRows * np);
    boolean prescale = folded && !blocked;
    if (identityPositions && !prescale) {
      // Without act-order or padding, positions are input features: copy the rows as they are.
      System.arraycopy(x, r0 * k, xp, 0, rows * k);
    } else if (identityPositions && LANE_NIBBLE_SCALE != null) {
      // The same, prescaled a vector at a time. This and the group sums run on one thread before
      // the others start: at M = 1, K = 4096 they took 16.6-18.4 µs per call with the per-feature
      // loops below, 3.0-3.5 µs this way (timers around them, 1000-call averages).
      for (int m = 0; m < rows; m++) {
        int xBase = (r0 + m) * k;
        int kk = 0;
        for (; kk + P <= k; kk += P) {
          FloatVector.fromArray(FS, x, xBase + kk)
              .mul(LANE_NIBBLE_SCALE)
              .intoArray(xp, m * kp + kk);
        }
        for (; kk < k; kk++) {
          xp[m * kp + kk] = x[xBase + kk] * NIBBLE_SCALE[kk & 7];
        }
      }
    } else {
      for (int m = 0; m < rows; m++) {
        int xBase = (r0 + m) * k;
        for (int kk = 0; kk < k; kk++) {
          int pos = panels.positionOf[kk];
          float v = x[xBase + kk];
          xp[m * kp + pos] = prescale ? v * NIBBLE_SCALE[pos & 7] : v;
        }
      }
    }
    if (prescale && identityPositions) {
      // Only the streaming fp32 path takes the zero points off per group (see oneRow); the groups
      // are runs of features here, each summed in feature order as below.
      for (int m = 0; m < rows; m++) {
        int xBase = (r0 + m) * k;
        for (int g = 0; g < groups; g++) {
          float sum = 0f;
          for (int kk = panels.groupStart[g]; kk < panels.groupStart[g + 1]; kk++) {
            sum += x[xBase + kk];
          }
          groupSums[m * groups + g] = sum;
        }
      }
    } else if (prescale) {
      for (int m = 0; m < rows; m++) {
        int xBase = (r0 + m) * k;
        for (int kk = 0; kk < k; kk++) {
          groupSums[m * groups + panels.groupOf[kk]] += x[xBase + kk];
        }
      }
    }
    if (blocked) {
      int pairs = (np + 2 * P - 1) / (2 * P);
      int rowBlocks = rows >= MICRO_ROWS ? paddedRows / MICRO_ROWS : 1;
      // Narrow layers have fewer column pairs than threads: split the rows too, so every thread
      // gets work (each row part dequantizes its pair again, a cost shared by its rows).
      int rowParts = Math.max(1, Math.min(rowBlocks, (threads + pairs - 1) / pairs));
      ParallelRange.run(
          threads,
          pairs * rowParts,
          1,
          (from, to) -> {
            for (int u = from; u < to; u++) {
              int pair = u / rowParts;
              int part = u % rowParts;
              int m0 = rows >= MICRO_ROWS ? rowBlocks * part / rowParts * MICRO_ROWS : 0;
              int m1 = rows >= MICRO_ROWS ? rowBlocks * (part + 1) / rowParts * MICRO_ROWS : rows;
              computeBlocked(
                  xp,
                  m0,
                  m1,
                  rows >= MICRO_ROWS,
                  acc,
                  pair * 2 * P,
                  Math.min(np, (pair + 1) * 2 * P));
            }
          });
    } else {
      ParallelRange.run(
          threads, np, P, (from, to) -> computeStreaming(xp, groupSums, rows, acc, from, to));
    }
    DType outType = config.outType();
    int n = config.n();
    for (int m = 0; m < rows; m++) {
      int o = (o0 + m) * n;
      int a = m * np;
      if (outType == DType.F32 && bias == null) {
        System.arraycopy(acc, a, out, o, n);
      } else if (outType == DType.F32) {
        for (int nn = 0; nn < n; nn++) {
          out[o + nn] = acc[a + nn] + bias[nn];
        }
      } else {
        for (int nn = 0; nn < n; nn++) {
          float y = outType.round(acc[a + nn]);
          out[o + nn] = bias == null ? y : outType.round(y + bias[nn]);
        }
      }
    }
  }

  /**
   * Rows per chunk: a multiple of {@link #MICRO_ROWS}; 240 rows of K = 14336 is 13 MiB of scratch.
   */
  static final int ROW_CHUNK = 240;

  /**
   * Per-thread scratch arrays, reused across calls so a call allocates nothing; each is zeroed on
   * hand-out. Grow-only: a thread keeps the largest size it needed.
   */
  static final class Scratch {
    private final float[][] arrays = new float[4][];

    float[] floats(int slot, int size) {
      float[] a = arrays[slot];
      if (a == null || a.length < size) {
        a = new float[size];
        arrays[slot] = a;
      } else {
        java.util.Arrays.fill(a, 0, size, 0f);
      }
      return a;
    }
  }

  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  /**
   * Few rows, fp32: decode each word in registers, one row at a time. Each panel is streamed whole
   * (all groups), so a thread's weights are read as one contiguous run: the activations of a few
   * rows fit in L1 and need no K chunks.
   */
  private void computeStreaming(
      float[] xp, float[] groupSums, int rows, float[] acc, int from, int to) {
    int groups = panels.groups;
    if (!folded) {
      for (int n0 = from; n0 < to; n0 += P) {
        for (int m = 0; m < rows; m += 2) {
          rowsRounded(xp, acc, m, n0, m + 1 < rows);
        }
      }
      return;
    }
    int blockRows = rows - rows % STREAM_BLOCK_ROWS;
    for (int n0 = from; n0 < to; ) {
      // Rows left over from the four-row blocks (all of them at M = 1 to 3) take four panels at a
      // time where this thread's range has them.
      int width = n0 + 4 * P <= to ? 4 : 1;
      for (int i = 0; i < width; i++) {
        for (int m = 0; m < blockRows; m += STREAM_BLOCK_ROWS) {
          fourRows(xp, groupSums, acc, m, n0 + i * P);
        }
      }
      for (int m = blockRows; m < rows; m++) {
        if (width == 4) {
          oneRowFourPanels(xp, groupSums, acc, m, n0);
        } else {
          oneRow(xp, groupSums, acc, m, n0, 0, groups);
        }
      }
      n0 += width * P;
    }
  }

  /**
   * Rows [m, m + 4) of panel {@code n0}: {@link #oneRow} with each word decoded once for four rows.
   * Two partial sums per row (even and odd nibbles) keep 8 multiply-adds in flight, twice the
   * 4-cycle FMA latency at one FMA per cycle. Measured, one thread, K = N = 4096, M = 4: 2.2 ms
   * against 2.5 for four calls of {@link #oneRow}. It stays below {@link #MICRO_ROWS}: with one
   * broadcast per multiply-add it reaches 31 GMAC/s per core, where the buffered micro-kernel (two
   * multiply-adds per broadcast) reaches 32 and at M = 16 wins, 8.6 ms against 9.2.
   */
  private void fourRows(float[] xp, float[] groupSums, float[] acc, int m, int n0) {
    int kp = panels.kPadded;
    int np = panels.nPadded;
    int groups = panels.groups;
    int[] words = panels.words;
    int panelBase = (n0 / P) * (kp / 8) * P;
    FloatVector a0 = FloatVector.zero(FS);
    FloatVector a1 = FloatVector.zero(FS);
    FloatVector a2 = FloatVector.zero(FS);
    FloatVector a3 = FloatVector.zero(FS);
    int x0 = m * kp;
    for (int g = 0; g < groups; g++) {
      FloatVector t0 = FloatVector.zero(FS);
      FloatVector t1 = FloatVector.zero(FS);
      FloatVector t2 = FloatVector.zero(FS);
      FloatVector t3 = FloatVector.zero(FS);
      FloatVector u0 = FloatVector.zero(FS);
      FloatVector u1 = FloatVector.zero(FS);
      FloatVector u2 = FloatVector.zero(FS);
      FloatVector u3 = FloatVector.zero(FS);
      int wEnd = panels.groupStart[g + 1] / 8;
      for (int w = panels.groupStart[g] / 8; w < wEnd; w++) {
        IntVector word = IntVector.fromArray(IS, words, panelBase + w * P);
        int pos = x0 + w * 8;
        // A loop over nibble pairs, not 8 copies: the unrolled body is too large for C2's inlining
        // budget (NodeCountInliningCutoff), which would leave vector calls boxed.
        for (int j = 0; j < 8; j += 2) {
          // The decode written out, not SimdW4A16Kernel.decode: in a method this large C2 stops
          // inlining helpers (NodeCountInliningCutoff), and a vector returned from a call that is
          // not inlined is boxed on the heap. Nibble j + 1 = 7 is shifted down, the others masked.
          FloatVector c = (FloatVector) word.and(0xF << (4 * j)).convert(VectorOperators.I2F, 0);
          t0 = c.fma(FloatVector.broadcast(FS, xp[pos + j]), t0);
          t1 = c.fma(FloatVector.broadcast(FS, xp[pos + kp + j]), t1);
          t2 = c.fma(FloatVector.broadcast(FS, xp[pos + 2 * kp + j]), t2);
          t3 = c.fma(FloatVector.broadcast(FS, xp[pos + 3 * kp + j]), t3);
          c =
              (FloatVector)
                  word.lanewise(VectorOperators.LSHR, j == 6 ? 28 : 0)
                      .and(j == 6 ? 0xF : 0xF << (4 * j + 4))
                      .convert(VectorOperators.I2F, 0);
          u0 = c.fma(FloatVector.broadcast(FS, xp[pos + j + 1]), u0);
          u1 = c.fma(FloatVector.broadcast(FS, xp[pos + kp + j + 1]), u1);
          u2 = c.fma(FloatVector.broadcast(FS, xp[pos + 2 * kp + j + 1]), u2);
          u3 = c.fma(FloatVector.broadcast(FS, xp[pos + 3 * kp + j + 1]), u3);
        }
      }
      FloatVector s = FloatVector.fromArray(FS, scales, n0 * groups + g * P);
      FloatVector zs = FloatVector.fromArray(FS, zeroTimesScale, n0 * groups + g * P).neg();
      a0 = zs.fma(FloatVector.broadcast(FS, groupSums[m * groups + g]), t0.add(u0).fma(s, a0));
      a1 =
          zs.fma(FloatVector.broadcast(FS, groupSums[(m + 1) * groups + g]), t1.add(u1).fma(s, a1));
      a2 =
          zs.fma(FloatVector.broadcast(FS, groupSums[(m + 2) * groups + g]), t2.add(u2).fma(s, a2));
      a3 =
          zs.fma(FloatVector.broadcast(FS, groupSums[(m + 3) * groups + g]), t3.add(u3).fma(s, a3));
    }
    a0.intoArray(acc, m * np + n0);
    a1.intoArray(acc, (m + 1) * np + n0);
    a2.intoArray(acc, (m + 2) * np + n0);
    a3.intoArray(acc, (m + 3) * np + n0);
  }

  /**
   * Rows [m0, m1) of columns [from, to): per K chunk and pair of panels, dequantize the weights
   * into a buffer (rounded to the activation dtype, as the reference does; exact fp32 products for
   * fp32), then run the 6-row micro-kernel over the rows when {@code micro} (the row range is then
   * made of whole blocks), else one row at a time over the buffer (fewer than 6 rows, fp16 and bf16
   * only).
   */
  private void computeBlocked(
      float[] xp, int m0, int m1, boolean micro, float[] acc, int from, int to) {
    int maxChunk = 0;
    for (int c = 0; c + 1 < chunkStart.length; c++) {
      maxChunk =
          Math.max(
              maxChunk, panels.groupStart[chunkStart[c + 1]] - panels.groupStart[chunkStart[c]]);
    }
    // Slot 3: the caller's slots 0-2 hold the activations this worker reads.
    float[] buf = SCRATCH.get().floats(3, maxChunk * 2 * P);
    for (int c = 0; c + 1 < chunkStart.length; c++) {
      int g0 = chunkStart[c];
      int g1 = chunkStart[c + 1];
      int base = panels.groupStart[g0];
      int len = panels.groupStart[g1] - base;
      for (int n0 = from; n0 < to; n0 += 2 * P) {
        boolean pair = n0 + P < to;
        dequantizeInto(buf, 0, n0, g0, g1, pair ? 2 * P : P);
        if (pair) {
          dequantizeInto(buf, P, n0 + P, g0, g1, 2 * P);
        }
        if (micro) {
          for (int m = m0; m < m1; m += MICRO_ROWS) {
            if (pair) {
              sixRowsTwoPanels(xp, acc, buf, m, n0, base, len);
            } else {
              sixRowsOnePanel(xp, acc, buf, m, n0, base, len);
            }
          }
        } else {
          for (int m = m0; m < m1; m++) {
            oneRowBuffered(xp, acc, buf, m, n0, base, len, pair ? 2 * P : P, 0);
            if (pair) {
              oneRowBuffered(xp, acc, buf, m, n0 + P, base, len, 2 * P, P);
            }
          }
        }
      }
    }
  }

  /**
   * Writes the dequantized weights of panel {@code n0}, positions of groups [g0, g1), into {@code
   * buf} at {@code offset + (position - start) * stride}.
   */
  private void dequantizeInto(float[] buf, int offset, int n0, int g0, int g1, int stride) {
    int kp = panels.kPadded;
    int groups = panels.groups;
    int[] words = panels.words;
    int panelBase = (n0 / P) * (kp / 8) * P;
    int base = panels.groupStart[g0];
    for (int g = g0; g < g1; g++) {
      FloatVector s = FloatVector.fromArray(FS, scales, n0 * groups + g * P);
      FloatVector z = FloatVector.fromArray(FS, zeros, n0 * groups + g * P);
      int wEnd = panels.groupStart[g + 1] / 8;
      for (int w = panels.groupStart[g] / 8; w < wEnd; w++) {
        IntVector word = IntVector.fromArray(IS, words, panelBase + w * P);
        int b = offset + (w * 8 - base) * stride;
        for (int j = 0; j < 8; j++) {
          IntVector code = word.lanewise(VectorOperators.LSHR, 4 * j).and(0xF);
          FloatVector v = ((FloatVector) code.convert(VectorOperators.I2F, 0)).sub(z).mul(s);
          if (!folded) {
            v = roundBits(v, drop);
          }
          v.intoArray(buf, b + j * stride);
        }
      }
    }
  }

  /** The 6 x 2P micro-kernel: 12 independent accumulators over the buffered positions. */
  private void sixRowsTwoPanels(
      float[] xp, float[] acc, float[] buf, int m, int n0, int base, int len) {
    int kp = panels.kPadded;
    int np = panels.nPadded;
    int o = m * np + n0;
    FloatVector a00 = FloatVector.fromArray(FS, acc, o);
    FloatVector a01 = FloatVector.fromArray(FS, acc, o + P);
    FloatVector a10 = FloatVector.fromArray(FS, acc, o + np);
    FloatVector a11 = FloatVector.fromArray(FS, acc, o + np + P);
    FloatVector a20 = FloatVector.fromArray(FS, acc, o + 2 * np);
    FloatVector a21 = FloatVector.fromArray(FS, acc, o + 2 * np + P);
    FloatVector a30 = FloatVector.fromArray(FS, acc, o + 3 * np);
    FloatVector a31 = FloatVector.fromArray(FS, acc, o + 3 * np + P);
    FloatVector a40 = FloatVector.fromArray(FS, acc, o + 4 * np);
    FloatVector a41 = FloatVector.fromArray(FS, acc, o + 4 * np + P);
    FloatVector a50 = FloatVector.fromArray(FS, acc, o + 5 * np);
    FloatVector a51 = FloatVector.fromArray(FS, acc, o + 5 * np + P);
    int x = m * kp + base;
    for (int i = 0; i < len; i++) {
      FloatVector w0 = FloatVector.fromArray(FS, buf, 2 * P * i);
      FloatVector w1 = FloatVector.fromArray(FS, buf, 2 * P * i + P);
      int xi = x + i;
      FloatVector b = FloatVector.broadcast(FS, xp[xi]);
      a00 = w0.fma(b, a00);
      a01 = w1.fma(b, a01);
      b = FloatVector.broadcast(FS, xp[xi + kp]);
      a10 = w0.fma(b, a10);
      a11 = w1.fma(b, a11);
      b = FloatVector.broadcast(FS, xp[xi + 2 * kp]);
      a20 = w0.fma(b, a20);
      a21 = w1.fma(b, a21);
      b = FloatVector.broadcast(FS, xp[xi + 3 * kp]);
      a30 = w0.fma(b, a30);
      a31 = w1.fma(b, a31);
      b = FloatVector.broadcast(FS, xp[xi + 4 * kp]);
      a40 = w0.fma(b, a40);
      a41 = w1.fma(b, a41);
      b = FloatVector.broadcast(FS, xp[xi + 5 * kp]);
      a50 = w0.fma(b, a50);
      a51 = w1.fma(b, a51);
    }
    a00.intoArray(acc, o);
    a01.intoArray(acc, o + P);
    a10.intoArray(acc, o + np);
    a11.intoArray(acc, o + np + P);
    a20.intoArray(acc, o + 2 * np);
    a21.intoArray(acc, o + 2 * np + P);
    a30.intoArray(acc, o + 3 * np);
    a31.intoArray(acc, o + 3 * np + P);
    a40.intoArray(acc, o + 4 * np);
    a41.intoArray(acc, o + 4 * np + P);
    a50.intoArray(acc, o + 5 * np);
    a51.intoArray(acc, o + 5 * np + P);
  }

  /** The 6 x P micro-kernel, for a thread's last, unpaired panel (buffer stride P). */
  private void sixRowsOnePanel(
      float[] xp, float[] acc, float[] buf, int m, int n0, int base, int len) {
    int kp = panels.kPadded;
    int np = panels.nPadded;
    int o = m * np + n0;
    FloatVector a0 = FloatVector.fromArray(FS, acc, o);
    FloatVector a1 = FloatVector.fromArray(FS, acc, o + np);
    FloatVector a2 = FloatVector.fromArray(FS, acc, o + 2 * np);
    FloatVector a3 = FloatVector.fromArray(FS, acc, o + 3 * np);
    FloatVector a4 = FloatVector.fromArray(FS, acc, o + 4 * np);
    FloatVector a5 = FloatVector.fromArray(FS, acc, o + 5 * np);
    int x = m * kp + base;
    for (int i = 0; i < len; i++) {
      FloatVector w0 = FloatVector.fromArray(FS, buf, P * i);
      int xi = x + i;
      a0 = w0.fma(FloatVector.broadcast(FS, xp[xi]), a0);
      a1 = w0.fma(FloatVector.broadcast(FS, xp[xi + kp]), a1);
      a2 = w0.fma(FloatVector.broadcast(FS, xp[xi + 2 * kp]), a2);
      a3 = w0.fma(FloatVector.broadcast(FS, xp[xi + 3 * kp]), a3);
      a4 = w0.fma(FloatVector.broadcast(FS, xp[xi + 4 * kp]), a4);
      a5 = w0.fma(FloatVector.broadcast(FS, xp[xi + 5 * kp]), a5);
    }
    a0.intoArray(acc, o);
    a1.intoArray(acc, o + np);
    a2.intoArray(acc, o + 2 * np);
    a3.intoArray(acc, o + 3 * np);
    a4.intoArray(acc, o + 4 * np);
    a5.intoArray(acc, o + 5 * np);
  }

  /** One row of one panel over the buffer (stride {@code stride}, panel at {@code offset}). */
  private void oneRowBuffered(
      float[] xp,
      float[] acc,
      float[] buf,
      int m,
      int n0,
      int base,
      int len,
      int stride,
      int offset) {
    int kp = panels.kPadded;
    int np = panels.nPadded;
    int o = m * np + n0;
    FloatVector a0 = FloatVector.fromArray(FS, acc, o);
    FloatVector a1 = FloatVector.zero(FS);
    int x = m * kp + base;
    int i = 0;
    for (; i + 1 < len; i += 2) {
      FloatVector w0 = FloatVector.fromArray(FS, buf, offset + stride * i);
      FloatVector w1 = FloatVector.fromArray(FS, buf, offset + stride * (i + 1));
      a0 = w0.fma(FloatVector.broadcast(FS, xp[x + i]), a0);
      a1 = w1.fma(FloatVector.broadcast(FS, xp[x + i + 1]), a1);
    }
    for (; i < len; i++) {
      FloatVector w0 = FloatVector.fromArray(FS, buf, offset + stride * i);
      a0 = w0.fma(FloatVector.broadcast(FS, xp[x + i]), a0);
    }
    a0.add(a1).intoArray(acc, o);
  }

  /**
   * One row: four independent partial sums (by nibble j mod 4), so consecutive multiply-adds do not
   * wait for each other (a single chain would be bound by the 4-cycle FMA latency).
   */
  private void oneRow(float[] xp, float[] groupSums, float[] acc, int m, int n0, int g0, int g1) {
    int kp = panels.kPadded;
    int np = panels.nPadded;
    int groups = panels.groups;
    int[] words = panels.words;
    int panelBase = (n0 / P) * (kp / 8) * P;
    FloatVector a0 = FloatVector.fromArray(FS, acc, m * np + n0);
    int x0 = m * kp;
    for (int g = g0; g < g1; g++) {
      FloatVector t0 = FloatVector.zero(FS);
      FloatVector t1 = FloatVector.zero(FS);
      FloatVector t2 = FloatVector.zero(FS);
      FloatVector t3 = FloatVector.zero(FS);
      int wEnd = panels.groupStart[g + 1] / 8;
      for (int w = panels.groupStart[g] / 8; w < wEnd; w++) {
        IntVector word = IntVector.fromArray(IS, words, panelBase + w * P);
        int pos = x0 + w * 8;
        t0 = SimdW4A16Kernel.decode(word, 0).fma(FloatVector.broadcast(FS, xp[pos]), t0);
        t1 = SimdW4A16Kernel.decode(word, 1).fma(FloatVector.broadcast(FS, xp[pos + 1]), t1);
        t2 = SimdW4A16Kernel.decode(word, 2).fma(FloatVector.broadcast(FS, xp[pos + 2]), t2);
        t3 = SimdW4A16Kernel.decode(word, 3).fma(FloatVector.broadcast(FS, xp[pos + 3]), t3);
        t0 = SimdW4A16Kernel.decode(word, 4).fma(FloatVector.broadcast(FS, xp[pos + 4]), t0);
        t1 = SimdW4A16Kernel.decode(word, 5).fma(FloatVector.broadcast(FS, xp[pos + 5]), t1);
        t2 = SimdW4A16Kernel.decode(word, 6).fma(FloatVector.broadcast(FS, xp[pos + 6]), t2);
        t3 = SimdW4A16Kernel.decode(word, 7).fma(FloatVector.broadcast(FS, xp[pos + 7]), t3);
      }
      FloatVector t = t0.add(t1).add(t2.add(t3));
      FloatVector s = FloatVector.fromArray(FS, scales, n0 * groups + g * P);
      FloatVector zs = FloatVector.fromArray(FS, zeroTimesScale, n0 * groups + g * P).neg();
      a0 = zs.fma(FloatVector.broadcast(FS, groupSums[m * groups + g]), t.fma(s, a0));
    }
    a0.intoArray(acc, m * np + n0);
  }

  /**
   * Row {@code m}, panels {@code n0} to {@code n0 + 3P}: {@link #oneRow} with each activation
   * broadcast serving four panels (in {@link #oneRow} every multiply-add has its own broadcast) and
   * four weight streams in flight; two partial sums per panel (even and odd nibbles) keep eight
   * multiply-adds in flight. Written out nibble by nibble: the same loop over nibble pairs (as
   * {@link #fourRows}) ran slower than one panel at a time (0.77 ms against 0.69-0.72, hot, one
   * thread). Measured with {@code docs/benchmarks/probes/SimdOneRowProbe.java} on the 2-core
   * AVX-512 EPYC, K = N = 4096, M = 1, ms, four panels / one, alternating processes: hot, one
   * thread 0.55-0.70 / 0.64-0.84; 14 layers in turn (112 MiB, cold), two threads 0.38-0.61 /
   * 0.51-0.64, one thread 0.72-0.83 / 0.79-1.07.
   */
  private void oneRowFourPanels(float[] xp, float[] groupSums, float[] acc, int m, int n0) {
    int kp = panels.kPadded;
    int np = panels.nPadded;
    int groups = panels.groups;
    int[] words = panels.words;
    int panelWords = (kp / 8) * P;
    int base = (n0 / P) * panelWords;
    FloatVector a0 = FloatVector.fromArray(FS, acc, m * np + n0);
    FloatVector a1 = FloatVector.fromArray(FS, acc, m * np + n0 + P);
    FloatVector a2 = FloatVector.fromArray(FS, acc, m * np + n0 + 2 * P);
    FloatVector a3 = FloatVector.fromArray(FS, acc, m * np + n0 + 3 * P);
    int x0 = m * kp;
    for (int g = 0; g < groups; g++) {
      FloatVector e0 = FloatVector.zero(FS);
      FloatVector e1 = FloatVector.zero(FS);
      FloatVector e2 = FloatVector.zero(FS);
      FloatVector e3 = FloatVector.zero(FS);
      FloatVector o0 = FloatVector.zero(FS);
      FloatVector o1 = FloatVector.zero(FS);
      FloatVector o2 = FloatVector.zero(FS);
      FloatVector o3 = FloatVector.zero(FS);
      int wEnd = panels.groupStart[g + 1] / 8;
      for (int w = panels.groupStart[g] / 8; w < wEnd; w++) {
        int at = base + w * P;
        IntVector w0 = IntVector.fromArray(IS, words, at);
        IntVector w1 = IntVector.fromArray(IS, words, at + panelWords);
        IntVector w2 = IntVector.fromArray(IS, words, at + 2 * panelWords);
        IntVector w3 = IntVector.fromArray(IS, words, at + 3 * panelWords);
        int pos = x0 + w * 8;
        // Written out nibble by nibble (the decode too): constant masks, and C2 inlines it all.
        FloatVector x = FloatVector.broadcast(FS, xp[pos]);
        e0 = ((FloatVector) w0.and(0xF).convert(VectorOperators.I2F, 0)).fma(x, e0);
        e1 = ((FloatVector) w1.and(0xF).convert(VectorOperators.I2F, 0)).fma(x, e1);
        e2 = ((FloatVector) w2.and(0xF).convert(VectorOperators.I2F, 0)).fma(x, e2);
        e3 = ((FloatVector) w3.and(0xF).convert(VectorOperators.I2F, 0)).fma(x, e3);
        x = FloatVector.broadcast(FS, xp[pos + 1]);
        o0 = ((FloatVector) w0.and(0xF0).convert(VectorOperators.I2F, 0)).fma(x, o0);
        o1 = ((FloatVector) w1.and(0xF0).convert(VectorOperators.I2F, 0)).fma(x, o1);
        o2 = ((FloatVector) w2.and(0xF0).convert(VectorOperators.I2F, 0)).fma(x, o2);
        o3 = ((FloatVector) w3.and(0xF0).convert(VectorOperators.I2F, 0)).fma(x, o3);
        x = FloatVector.broadcast(FS, xp[pos + 2]);
        e0 = ((FloatVector) w0.and(0xF00).convert(VectorOperators.I2F, 0)).fma(x, e0);
        e1 = ((FloatVector) w1.and(0xF00).convert(VectorOperators.I2F, 0)).fma(x, e1);
        e2 = ((FloatVector) w2.and(0xF00).convert(VectorOperators.I2F, 0)).fma(x, e2);
        e3 = ((FloatVector) w3.and(0xF00).convert(VectorOperators.I2F, 0)).fma(x, e3);
        x = FloatVector.broadcast(FS, xp[pos + 3]);
        o0 = ((FloatVector) w0.and(0xF000).convert(VectorOperators.I2F, 0)).fma(x, o0);
        o1 = ((FloatVector) w1.and(0xF000).convert(VectorOperators.I2F, 0)).fma(x, o1);
        o2 = ((FloatVector) w2.and(0xF000).convert(VectorOperators.I2F, 0)).fma(x, o2);
        o3 = ((FloatVector) w3.and(0xF000).convert(VectorOperators.I2F, 0)).fma(x, o3);
        x = FloatVector.broadcast(FS, xp[pos + 4]);
        e0 = ((FloatVector) w0.and(0xF0000).convert(VectorOperators.I2F, 0)).fma(x, e0);
        e1 = ((FloatVector) w1.and(0xF0000).convert(VectorOperators.I2F, 0)).fma(x, e1);
        e2 = ((FloatVector) w2.and(0xF0000).convert(VectorOperators.I2F, 0)).fma(x, e2);
        e3 = ((FloatVector) w3.and(0xF0000).convert(VectorOperators.I2F, 0)).fma(x, e3);
        x = FloatVector.broadcast(FS, xp[pos + 5]);
        o0 = ((FloatVector) w0.and(0xF00000).convert(VectorOperators.I2F, 0)).fma(x, o0);
        o1 = ((FloatVector) w1.and(0xF00000).convert(VectorOperators.I2F, 0)).fma(x, o1);
        o2 = ((FloatVector) w2.and(0xF00000).convert(VectorOperators.I2F, 0)).fma(x, o2);
        o3 = ((FloatVector) w3.and(0xF00000).convert(VectorOperators.I2F, 0)).fma(x, o3);
        x = FloatVector.broadcast(FS, xp[pos + 6]);
        e0 = ((FloatVector) w0.and(0xF000000).convert(VectorOperators.I2F, 0)).fma(x, e0);
        e1 = ((FloatVector) w1.and(0xF000000).convert(VectorOperators.I2F, 0)).fma(x, e1);
        e2 = ((FloatVector) w2.and(0xF000000).convert(VectorOperators.I2F, 0)).fma(x, e2);
        e3 = ((FloatVector) w3.and(0xF000000).convert(VectorOperators.I2F, 0)).fma(x, e3);
        x = FloatVector.broadcast(FS, xp[pos + 7]);
        o0 =
            ((FloatVector) w0.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0))
                .fma(x, o0);
        o1 =
            ((FloatVector) w1.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0))
                .fma(x, o1);
        o2 =
            ((FloatVector) w2.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0))
                .fma(x, o2);
        o3 =
            ((FloatVector) w3.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0))
                .fma(x, o3);
      }
      FloatVector sum = FloatVector.broadcast(FS, groupSums[m * groups + g]);
      int si = n0 * groups + g * P;
      // Scale, then take the zero point off against the group's activation sum (see oneRow).
      a0 =
          FloatVector.fromArray(FS, zeroTimesScale, si)
              .neg()
              .fma(sum, e0.add(o0).fma(FloatVector.fromArray(FS, scales, si), a0));
      si += P * groups;
      a1 =
          FloatVector.fromArray(FS, zeroTimesScale, si)
              .neg()
              .fma(sum, e1.add(o1).fma(FloatVector.fromArray(FS, scales, si), a1));
      si += P * groups;
      a2 =
          FloatVector.fromArray(FS, zeroTimesScale, si)
              .neg()
              .fma(sum, e2.add(o2).fma(FloatVector.fromArray(FS, scales, si), a2));
      si += P * groups;
      a3 =
          FloatVector.fromArray(FS, zeroTimesScale, si)
              .neg()
              .fma(sum, e3.add(o3).fma(FloatVector.fromArray(FS, scales, si), a3));
    }
    a0.intoArray(acc, m * np + n0);
    a1.intoArray(acc, m * np + n0 + P);
    a2.intoArray(acc, m * np + n0 + 2 * P);
    a3.intoArray(acc, m * np + n0 + 3 * P);
  }

  /**
   * Row {@code m} (and {@code m + 1} when {@code two}) of panel {@code n0} for fp16 and bf16
   * activations: each weight dequantized and rounded to the dtype in registers ({@link #roundBits},
   * exactly the value {@code Float16.round} / {@code BFloat16.round} gives the reference), and
   * multiplied into each row as it is made (two accumulator chains per row).
   */
  private void rowsRounded(float[] xp, float[] acc, int m, int n0, boolean two) {
    int kp = panels.kPadded;
    int np = panels.nPadded;
    int groups = panels.groups;
    int[] words = panels.words;
    int panelBase = (n0 / P) * (kp / 8) * P;
    FloatVector a0 = FloatVector.fromArray(FS, acc, m * np + n0);
    FloatVector a1 = FloatVector.zero(FS);
    FloatVector b0 = two ? FloatVector.fromArray(FS, acc, (m + 1) * np + n0) : a1;
    FloatVector b1 = FloatVector.zero(FS);
    int x0 = m * kp;
    for (int g = 0; g < groups; g++) {
      FloatVector s = FloatVector.fromArray(FS, scales, n0 * groups + g * P);
      // (code - zero) * scale as code * scale - zero * scale in one fma: both products and their
      // difference are exact in fp32 for a 16-bit scale, so the value is the same.
      FloatVector zs = FloatVector.fromArray(FS, zeroTimesScale, n0 * groups + g * P).neg();
      int wEnd = panels.groupStart[g + 1] / 8;
      for (int w = panels.groupStart[g] / 8; w < wEnd; w++) {
        IntVector word = IntVector.fromArray(IS, words, panelBase + w * P);
        int pos = x0 + w * 8;
        for (int j = 0; j < 8; j += 2) {
          IntVector c0 = word.lanewise(VectorOperators.LSHR, 4 * j).and(0xF);
          IntVector c1 = word.lanewise(VectorOperators.LSHR, 4 * j + 4).and(0xF);
          FloatVector v0 =
              roundBits(((FloatVector) c0.convert(VectorOperators.I2F, 0)).fma(s, zs), drop);
          FloatVector v1 =
              roundBits(((FloatVector) c1.convert(VectorOperators.I2F, 0)).fma(s, zs), drop);
          a0 = v0.fma(FloatVector.broadcast(FS, xp[pos + j]), a0);
          a1 = v1.fma(FloatVector.broadcast(FS, xp[pos + j + 1]), a1);
          if (two) {
            b0 = v0.fma(FloatVector.broadcast(FS, xp[pos + kp + j]), b0);
            b1 = v1.fma(FloatVector.broadcast(FS, xp[pos + kp + j + 1]), b1);
          }
        }
      }
    }
    a0.add(a1).intoArray(acc, m * np + n0);
    if (two) {
      b0.add(b1).intoArray(acc, (m + 1) * np + n0);
    }
  }

  /**
   * Rounds the low {@code drop} bits off each lane's fp32 bit pattern, to nearest even, as {@code
   * BFloat16.round} does for bf16 ({@code drop} 16): add {@code 2^(drop-1) - 1} plus the lowest
   * kept bit, clear the dropped bits (four or five integer operations; a general rounding at a
   * per-lane ulp took eleven). Exact for every finite bf16 result. For fp16 ({@code drop} 13) it
   * keeps 11 significant bits, which is fp16's rounding in its normal range but not below 2^-14,
   * where fp16's ulp is fixed at 2^-24; it is exact for what the kernel rounds, though: a
   * dequantized weight is an integer of at most 15 in magnitude times an fp16 scale, so one below
   * 2^-14 is a multiple of 2^-24 with at most 10 significant bits, which fp16 holds exactly and
   * this leaves alone (the layer refuses scales whose weights could overflow fp16).
   */
  static FloatVector roundBits(FloatVector w, int drop) {
    IntVector bits = w.reinterpretAsInts();
    // The lowest kept bit as a lane mask rather than shifted down: no shift by a count that is
    // not a constant where the caller's drop is a field.
    VectorMask<Integer> odd = bits.and(1 << drop).compare(VectorOperators.NE, 0);
    return bits.add((1 << (drop - 1)) - 1)
        .lanewise(VectorOperators.ADD, 1, odd)
        .and(-1 << drop)
        .reinterpretAsFloats();
  }

  /** Bits {@link #roundBits} drops for bf16. */
  static final int BF16_DROP = 16;

  /** Bits {@link #roundBits} drops for fp16 (see there for the range where that is exact). */
  static final int F16_DROP = 13;
}
