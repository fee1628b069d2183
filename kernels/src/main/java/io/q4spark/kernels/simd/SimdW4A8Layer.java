package io.q4spark.kernels.simd;

import io.q4spark.kernels.QuantizedLinear;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The integer GEMM of {@link SimdW4A8Kernel}: int8 activation codes times int4 weight codes, summed
 * exactly per group in 16-bit lanes, then scaled in fp32. Weights stay in {@link SimdPanels}'
 * K-packed words; one 32-bit word holds 8 codes of one column, and seen as two 16-bit lanes it
 * holds positions 8w..8w+3 (low half) and 8w+4..8w+7 (high half). Each lane is one column's partial
 * sum:
 *
 * <pre>
 *   word lane i (column n0 + i):  | high short: codes 8w+7..8w+4 | low short: codes 8w+3..8w+0 |
 *   pair(w, j) = qx[8w+j] (low) | qx[8w+4+j] (high)              one 32-bit broadcast per step
 *   one row, step j = 0..3:   c = (short &gt;&gt;&gt; 4j) &amp; 0xF          the code, 0..15
 *                             s16 += c * pair(w, j)                 16-bit multiply and add
 *   four rows, per word:      q' = short ^ 0x8888
 *              step j:        c = (q' &lt;&lt; (12 - 4j)) &gt;&gt; 12 (arithmetic)    code - 8, in -8..7
 *                             s16 -= c * pair(w, j)                 16-bit multiply and subtract
 *   every FLUSH_WORDS (one row) or CENTRED_FLUSH_WORDS (four rows) words and at each group end:
 *                             s32(n) += low(s16) + high(s16)        both halves into the int32
 *   at each group end:        isum(g, n) = s32(n) - codeZero * sum over k in g of qx[k]  (one row)
 *                             isum(g, n) = -s32(n) - (codeZero - 8) * sum ...       (four rows)
 *                             acc(n) += float(isum(g, n)) * ws(g, n)                fp32 FMA
 * </pre>
 *
 * The group sums are exact and the reference's. The zero point comes off once per group, so a step
 * is a shift, an and (or two shifts), a multiply and an add for twice as many lanes as an fp32 FMA
 * has: about half the instructions of the fp32 path per multiply-add. The four-row kernels centre
 * the codes and subtract the products so that their 16-bit lanes hold twice as many words before
 * they must be widened (the bounds are at the two constants). Rows are register-blocked by {@link
 * #BLOCK_ROWS}: each word is decoded once for that many rows.
 *
 * <p>The kernels call no helper methods of their own and spell out each broadcast: in methods this
 * large C2 stops inlining methods that are not forced ({@code NodeCountInliningCutoff}), and a
 * vector returned from a call that is not inlined is boxed on the heap (measured: a one-line
 * broadcast helper left out cost 188 MB of garbage per call at M = 16, 2 threads).
 */
final class SimdW4A8Layer {
  private static final VectorSpecies<Float> FS = SimdW4A16Kernel.FS;
  private static final VectorSpecies<Integer> IS = SimdW4A16Kernel.IS;
  private static final VectorSpecies<Short> SS =
      IS.withLanes(short.class).withShape(IS.vectorShape());
  private static final int P = IS.length();

  /**
   * Words the one-row kernels sum in 16-bit lanes before they flush them to int32: a lane takes 4
   * products per word, each code * qx with the code unsigned (0..15) and qx in -128..127 (-128 is
   * reachable), at most 1920 in magnitude, and 16 of them reach 30720, just below the 32767 a
   * signed 16-bit lane holds.
   */
  static final int FLUSH_WORDS = 4;

  /**
   * Words the four-row kernels sum in 16-bit lanes, their codes centred and the products
   * subtracted: each term is -(code - 8) * qx with code - 8 in -8..7 and qx in -128..127, from -(-8
   * * -128) = -1024 to -(-8 * 127) = 1016, so 32 of them stay within -32768..32512. (Added, the
   * terms would reach +1024 and 32 of them +32768, one too many.) Centring costs a shift per code,
   * which the four rows share; the one-row kernels keep unsigned codes. Measured (K = N = 4096, 2
   * threads, median ms, 4 words / 8): {@code docs/benchmarks/cpu-2026-12-02.md}.
   */
  static final int CENTRED_FLUSH_WORDS = 8;

  /**
   * Rows sharing each decoded word: 4 rows x 2 panels keep 8 16-bit accumulators, 2 words, 2
   * decoded steps and a broadcast in about 13 of the 32 AVX-512 registers, and already amortize the
   * decode (7 of the ~19 instructions a row needs per word at one row) to an eighth.
   */
  static final int BLOCK_ROWS = 4;

  /** The 4-bit code mask, per 16-bit lane. */
  private static final short NIBBLE = 0xF;

  /** Flips the top bit of each of a 16-bit lane's four codes: code - 8 as a signed nibble. */
  private static final short CENTRE = (short) 0x8888;

  private final SimdPanels panels;
  private final int threads;

  /** The weights' zero point, taken off the one-row kernels' sums once per group. */
  private final int codeZero;

  /**
   * The zero point less the 8 the four-row kernels already took off each code: {@code codeZero - 8}
   * (0 for int4 and uint4b8 weights), times the group's code sum at the group's end.
   */
  private final int zeroRest;

  /** Weight scales (already in the model dtype), panel-major as {@code SimdW4A16Layer.scales}. */
  private final float[] scales;

  /**
   * Whether input feature k sits at position k (no act-order, no padding): {@link #compute} then
   * lays out the activation pairs with a plain loop instead of a position lookup per feature. That
   * work runs on one thread before the others start: at M = 1, K = 4096 it fell from 17.7 to 5 µs
   * of a 0.27 ms call (timers around it, 2000-call averages).
   */
  private final boolean identityPositions;

  SimdW4A8Layer(QuantizedLinear layer, float[] weightScales, int threads) {
    assert SS.length() == 2 * P;
    this.panels = SimdPanels.of(layer, P);
    this.threads = threads;
    this.codeZero = QuantizedLinear.codeZero(layer.config().weightType());
    this.zeroRest = codeZero - 8;
    boolean identity = panels.kPadded == panels.k;
    for (int kk = 0; identity && kk < panels.k; kk++) {
      identity = panels.positionOf[kk] == kk;
    }
    this.identityPositions = identity;
    int groups = panels.groups;
    int n = layer.config().n();
    int np = panels.nPadded;
    this.scales = new float[groups * np];
    for (int g = 0; g < groups; g++) {
      for (int nn = 0; nn < n; nn++) {
        scales[SimdW4A16Layer.scaleIndex(g, nn, groups)] = weightScales[g * n + nn];
      }
    }
  }

  /** Activation scratch laid out for {@link #compute}; grown per thread, never per call. */
  static final class Scratch {
    int[] pairs = new int[0];
    int[] codeSums = new int[0];
    float[] acc = new float[0];
    final int[] blockSums = new int[2 * BLOCK_ROWS * P];

    /** A block's 16-bit sums on their way to {@link #blockSums}. */
    final short[] blockPartials = new short[2 * BLOCK_ROWS * 2 * P];

    void ensure(int pairCount, int sumCount, int accCount) {
      if (pairs.length < pairCount) {
        pairs = new int[pairCount];
      }
      if (codeSums.length < sumCount) {
        codeSums = new int[sumCount];
      }
      if (acc.length < accCount) {
        acc = new float[accCount];
      }
    }
  }

  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  /**
   * {@code acc[m * nPadded + n] = sum over g of float(isum(g, n)) * ws(g, n)} for {@code rows} rows
   * of int8 codes ({@code rows * K}, input-feature order); when {@code groupSums} is not null it
   * also receives each {@code isum(g, n)} at {@code (m * groups + g) * nPadded + n}.
   *
   * @return the accumulator array, valid until this thread's next call
   */
  float[] compute(byte[] codes, int rows, int[] groupSums) {
    int k = panels.k;
    int kp = panels.kPadded;
    int groups = panels.groups;
    int np = panels.nPadded;
    int half = kp / 2;
    Scratch s = SCRATCH.get();
    s.ensure(rows * half, rows * groups, rows * np);
    int[] pairs = s.pairs;
    int[] codeSums = s.codeSums;
    float[] acc = s.acc;
    // fourRows adds each group into acc; the one-row kernels overwrite their rows.
    java.util.Arrays.fill(acc, 0, rows * np, 0f);
    if (identityPositions) {
      identityPairs(codes, rows, pairs, codeSums);
    } else {
      positionedPairs(codes, rows, pairs, codeSums);
    }
    int panelCount = np / P;
    int blocks = (rows + BLOCK_ROWS - 1) / BLOCK_ROWS;
    // Fewer panels than threads (narrow layers): split the rows too, so every thread gets work.
    int rowParts = Math.max(1, Math.min(blocks, (threads + panelCount - 1) / panelCount));
    ParallelRange.run(
        threads,
        panelCount * rowParts,
        1,
        (from, to) -> {
          // This thread's integer group sums of a 4-row block, two panels.
          Scratch own = SCRATCH.get();
          int[] isum = own.blockSums;
          short[] partial = own.blockPartials;
          for (int u = from; u < to; ) {
            int n0 = u / rowParts * P;
            int part = u % rowParts;
            // Two neighbouring panels of the same rows: the one-row kernel runs them together,
            // each activation broadcast then serving both.
            boolean two = rowParts == 1 && u + 1 < to;
            // Calls of fewer than four rows: four panels at a time where the range has them.
            boolean four = rowParts == 1 && rows < BLOCK_ROWS && u + 3 < to;
            int m0 = Math.min(rows, blocks * part / rowParts * BLOCK_ROWS);
            int m1 = Math.min(rows, blocks * (part + 1) / rowParts * BLOCK_ROWS);
            int m = m0;
            for (; m + BLOCK_ROWS <= m1; m += BLOCK_ROWS) {
              fourRows(pairs, codeSums, acc, groupSums, isum, partial, m, n0, two);
            }
            for (; m < m1; m++) {
              if (four) {
                oneRowFourPanels(pairs, codeSums, acc, groupSums, m, n0);
              } else if (two) {
                oneRowTwoPanels(pairs, codeSums, acc, groupSums, m, n0);
              } else {
                oneRow(pairs, codeSums, acc, groupSums, m, n0);
              }
            }
            u += four ? 4 : two ? 2 : 1;
          }
        });
    return acc;
  }

  /**
   * The activation pairs and per-group code sums of {@link #compute} for layers whose features sit
   * at their own positions: pair 4w + j holds codes 8w + j (low half) and 8w + 4 + j (high half).
   */
  private void identityPairs(byte[] codes, int rows, int[] pairs, int[] codeSums) {
    int k = panels.k;
    int half = panels.kPadded / 2;
    int groups = panels.groups;
    for (int m = 0; m < rows; m++) {
      int cb = m * k;
      int pb = m * half;
      for (int w = 0; w < k / 8; w++) {
        int c = cb + 8 * w;
        int p = pb + 4 * w;
        pairs[p] = (codes[c] & 0xFFFF) | (codes[c + 4] << 16);
        pairs[p + 1] = (codes[c + 1] & 0xFFFF) | (codes[c + 5] << 16);
        pairs[p + 2] = (codes[c + 2] & 0xFFFF) | (codes[c + 6] << 16);
        pairs[p + 3] = (codes[c + 3] & 0xFFFF) | (codes[c + 7] << 16);
      }
      for (int g = 0; g < groups; g++) {
        int sum = 0;
        for (int kk = panels.groupStart[g]; kk < panels.groupStart[g + 1]; kk++) {
          sum += codes[cb + kk];
        }
        codeSums[m * groups + g] = sum;
      }
    }
  }

  /** As {@link #identityPairs}, each feature placed at its position (act-order, padded groups). */
  private void positionedPairs(byte[] codes, int rows, int[] pairs, int[] codeSums) {
    int k = panels.k;
    int half = panels.kPadded / 2;
    int groups = panels.groups;
    java.util.Arrays.fill(pairs, 0, rows * half, 0);
    java.util.Arrays.fill(codeSums, 0, rows * groups, 0);
    for (int m = 0; m < rows; m++) {
      for (int kk = 0; kk < k; kk++) {
        int pos = panels.positionOf[kk];
        int q = codes[m * k + kk];
        // Position 8w + j (j < 4) is the low half of pair 4w + j, 8w + 4 + j its high half.
        int j = pos & 7;
        int idx = m * half + (pos >>> 3) * 4 + (j & 3);
        pairs[idx] |= j < 4 ? (q & 0xFFFF) : q << 16;
        codeSums[m * groups + panels.groupOf[kk]] += q;
      }
    }
  }

  int groups() {
    return panels.groups;
  }

  /** The packed weights, for a GEMM that shares them. */
  SimdPanels panels() {
    return panels;
  }

  int nPadded() {
    return panels.nPadded;
  }

  /** Row {@code m}, panel {@code n0}: the loop of the class comment for one row. */
  private void oneRow(int[] pairs, int[] codeSums, float[] acc, int[] groupSums, int m, int n0) {
    int np = panels.nPadded;
    int groups = panels.groups;
    int[] words = panels.words;
    int panelBase = (n0 / P) * (panels.kPadded / 8) * P;
    int x0 = m * (panels.kPadded / 2);
    FloatVector f0 = FloatVector.zero(FS);
    for (int g = 0; g < groups; g++) {
      IntVector i0 = IntVector.zero(IS);
      int wEnd = panels.groupStart[g + 1] / 8;
      for (int w0 = panels.groupStart[g] / 8; w0 < wEnd; w0 += FLUSH_WORDS) {
        int w1 = Math.min(wEnd, w0 + FLUSH_WORDS);
        ShortVector s0 = ShortVector.zero(SS);
        ShortVector t0 = ShortVector.zero(SS);
        for (int w = w0; w < w1; w++) {
          ShortVector q = IntVector.fromArray(IS, words, panelBase + w * P).reinterpretAsShorts();
          int x = x0 + w * 4;
          // Two chains, so consecutive adds do not wait for each other.
          s0 = s0.add(q.and(NIBBLE).mul(IntVector.broadcast(IS, pairs[x]).reinterpretAsShorts()));
          t0 =
              t0.add(
                  q.lanewise(VectorOperators.LSHR, 4)
                      .and(NIBBLE)
                      .mul(IntVector.broadcast(IS, pairs[x + 1]).reinterpretAsShorts()));
          s0 =
              s0.add(
                  q.lanewise(VectorOperators.LSHR, 8)
                      .and(NIBBLE)
                      .mul(IntVector.broadcast(IS, pairs[x + 2]).reinterpretAsShorts()));
          t0 =
              t0.add(
                  q.lanewise(VectorOperators.LSHR, 12)
                      .mul(IntVector.broadcast(IS, pairs[x + 3]).reinterpretAsShorts()));
        }
        // Inline (not a helper): C2 inlines only tiny methods at these cooler call sites, and a
        // vector passed to a method that is not inlined is boxed on the heap.
        IntVector v0 = s0.add(t0).reinterpretAsInts();
        i0 =
            i0.add(v0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(v0.lanewise(VectorOperators.ASHR, 16));
      }
      FloatVector ws = FloatVector.fromArray(FS, scales, n0 * groups + g * P);
      i0 = i0.sub(codeZero * codeSums[m * groups + g]);
      if (groupSums != null) {
        i0.intoArray(groupSums, (m * groups + g) * np + n0);
      }
      f0 = ((FloatVector) i0.convert(VectorOperators.I2F, 0)).fma(ws, f0);
    }
    f0.intoArray(acc, m * np + n0);
  }

  /**
   * Row {@code m}, panels {@code n0} and {@code n0 + P}: {@link #oneRow} for two panels, each
   * activation broadcast serving both (measured in L2, one thread: 52 GMAC/s against 44 with one
   * panel).
   */
  private void oneRowTwoPanels(
      int[] pairs, int[] codeSums, float[] acc, int[] groupSums, int m, int n0) {
    int np = panels.nPadded;
    int groups = panels.groups;
    int[] words = panels.words;
    int panelWords = (panels.kPadded / 8) * P;
    int baseA = (n0 / P) * panelWords;
    int baseB = baseA + panelWords;
    int x0 = m * (panels.kPadded / 2);
    FloatVector fa = FloatVector.zero(FS);
    FloatVector fb = FloatVector.zero(FS);
    for (int g = 0; g < groups; g++) {
      IntVector ia = IntVector.zero(IS);
      IntVector ib = IntVector.zero(IS);
      int wEnd = panels.groupStart[g + 1] / 8;
      for (int w0 = panels.groupStart[g] / 8; w0 < wEnd; w0 += FLUSH_WORDS) {
        int w1 = Math.min(wEnd, w0 + FLUSH_WORDS);
        ShortVector sa = ShortVector.zero(SS);
        ShortVector sb = ShortVector.zero(SS);
        for (int w = w0; w < w1; w++) {
          ShortVector qa = IntVector.fromArray(IS, words, baseA + w * P).reinterpretAsShorts();
          ShortVector qb = IntVector.fromArray(IS, words, baseB + w * P).reinterpretAsShorts();
          // A loop, not 4 copies: see fourRows.
          for (int j = 0; j < 4; j++) {
            ShortVector x = IntVector.broadcast(IS, pairs[x0 + w * 4 + j]).reinterpretAsShorts();
            sa = sa.add(qa.lanewise(VectorOperators.LSHR, 4 * j).and(NIBBLE).mul(x));
            sb = sb.add(qb.lanewise(VectorOperators.LSHR, 4 * j).and(NIBBLE).mul(x));
          }
        }
        IntVector va = sa.reinterpretAsInts();
        ia =
            ia.add(va.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(va.lanewise(VectorOperators.ASHR, 16));
        IntVector vb = sb.reinterpretAsInts();
        ib =
            ib.add(vb.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(vb.lanewise(VectorOperators.ASHR, 16));
      }
      int zeroSum = codeZero * codeSums[m * groups + g];
      ia = ia.sub(zeroSum);
      ib = ib.sub(zeroSum);
      if (groupSums != null) {
        ia.intoArray(groupSums, (m * groups + g) * np + n0);
        ib.intoArray(groupSums, (m * groups + g) * np + n0 + P);
      }
      fa =
          ((FloatVector) ia.convert(VectorOperators.I2F, 0))
              .fma(FloatVector.fromArray(FS, scales, n0 * groups + g * P), fa);
      fb =
          ((FloatVector) ib.convert(VectorOperators.I2F, 0))
              .fma(FloatVector.fromArray(FS, scales, (n0 + P) * groups + g * P), fb);
    }
    fa.intoArray(acc, m * np + n0);
    fb.intoArray(acc, m * np + n0 + P);
  }

  /**
   * Row {@code m}, panels {@code n0} to {@code n0 + 3P}: {@link #oneRowTwoPanels} for four panels,
   * each activation broadcast serving four and four weight streams in flight. Measured on the
   * 2-core AVX-512 EPYC, M = 1, cold (weights rotated over 96 MiB), 2 threads, two alternating
   * rounds, time over ONNX Runtime accuracy level 4's in the same run, two / four panels: 4096x4096
   * 1.13 / 1.01 and 1.17 / 0.99, 4096x14336 1.16 / 1.01 and 1.09 / 1.06, 14336x4096 1.16 / 1.00 and
   * 1.08 / 1.05; hot (in L3) both about 0.23 ms at 4096x4096.
   */
  private void oneRowFourPanels(
      int[] pairs, int[] codeSums, float[] acc, int[] groupSums, int m, int n0) {
    int np = panels.nPadded;
    int groups = panels.groups;
    int[] words = panels.words;
    int panelWords = (panels.kPadded / 8) * P;
    int baseA = (n0 / P) * panelWords;
    int x0 = m * (panels.kPadded / 2);
    FloatVector fa = FloatVector.zero(FS);
    FloatVector fb = FloatVector.zero(FS);
    FloatVector fc = FloatVector.zero(FS);
    FloatVector fd = FloatVector.zero(FS);
    for (int g = 0; g < groups; g++) {
      IntVector ia = IntVector.zero(IS);
      IntVector ib = IntVector.zero(IS);
      IntVector ic = IntVector.zero(IS);
      IntVector id = IntVector.zero(IS);
      int wEnd = panels.groupStart[g + 1] / 8;
      for (int w0 = panels.groupStart[g] / 8; w0 < wEnd; w0 += FLUSH_WORDS) {
        int w1 = Math.min(wEnd, w0 + FLUSH_WORDS);
        ShortVector sa = ShortVector.zero(SS);
        ShortVector sb = ShortVector.zero(SS);
        ShortVector sc = ShortVector.zero(SS);
        ShortVector sd = ShortVector.zero(SS);
        for (int w = w0; w < w1; w++) {
          int at = baseA + w * P;
          ShortVector qa = IntVector.fromArray(IS, words, at).reinterpretAsShorts();
          ShortVector qb = IntVector.fromArray(IS, words, at + panelWords).reinterpretAsShorts();
          ShortVector qc =
              IntVector.fromArray(IS, words, at + 2 * panelWords).reinterpretAsShorts();
          ShortVector qd =
              IntVector.fromArray(IS, words, at + 3 * panelWords).reinterpretAsShorts();
          // Step by step: nibble 0 needs no shift, nibble 3 no mask (the shift is the loop's
          // dearest operation; the loop over j kept both: 2-4% slower in W4A8OneRowOpsProbe).
          int xw = x0 + w * 4;
          ShortVector x = IntVector.broadcast(IS, pairs[xw]).reinterpretAsShorts();
          sa = sa.add(qa.and(NIBBLE).mul(x));
          sb = sb.add(qb.and(NIBBLE).mul(x));
          sc = sc.add(qc.and(NIBBLE).mul(x));
          sd = sd.add(qd.and(NIBBLE).mul(x));
          x = IntVector.broadcast(IS, pairs[xw + 1]).reinterpretAsShorts();
          sa = sa.add(qa.lanewise(VectorOperators.LSHR, 4).and(NIBBLE).mul(x));
          sb = sb.add(qb.lanewise(VectorOperators.LSHR, 4).and(NIBBLE).mul(x));
          sc = sc.add(qc.lanewise(VectorOperators.LSHR, 4).and(NIBBLE).mul(x));
          sd = sd.add(qd.lanewise(VectorOperators.LSHR, 4).and(NIBBLE).mul(x));
          x = IntVector.broadcast(IS, pairs[xw + 2]).reinterpretAsShorts();
          sa = sa.add(qa.lanewise(VectorOperators.LSHR, 8).and(NIBBLE).mul(x));
          sb = sb.add(qb.lanewise(VectorOperators.LSHR, 8).and(NIBBLE).mul(x));
          sc = sc.add(qc.lanewise(VectorOperators.LSHR, 8).and(NIBBLE).mul(x));
          sd = sd.add(qd.lanewise(VectorOperators.LSHR, 8).and(NIBBLE).mul(x));
          x = IntVector.broadcast(IS, pairs[xw + 3]).reinterpretAsShorts();
          sa = sa.add(qa.lanewise(VectorOperators.LSHR, 12).mul(x));
          sb = sb.add(qb.lanewise(VectorOperators.LSHR, 12).mul(x));
          sc = sc.add(qc.lanewise(VectorOperators.LSHR, 12).mul(x));
          sd = sd.add(qd.lanewise(VectorOperators.LSHR, 12).mul(x));
        }
        IntVector va = sa.reinterpretAsInts();
        ia =
            ia.add(va.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(va.lanewise(VectorOperators.ASHR, 16));
        IntVector vb = sb.reinterpretAsInts();
        ib =
            ib.add(vb.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(vb.lanewise(VectorOperators.ASHR, 16));
        IntVector vc = sc.reinterpretAsInts();
        ic =
            ic.add(vc.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(vc.lanewise(VectorOperators.ASHR, 16));
        IntVector vd = sd.reinterpretAsInts();
        id =
            id.add(vd.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(vd.lanewise(VectorOperators.ASHR, 16));
      }
      int zeroSum = codeZero * codeSums[m * groups + g];
      ia = ia.sub(zeroSum);
      ib = ib.sub(zeroSum);
      ic = ic.sub(zeroSum);
      id = id.sub(zeroSum);
      if (groupSums != null) {
        ia.intoArray(groupSums, (m * groups + g) * np + n0);
        ib.intoArray(groupSums, (m * groups + g) * np + n0 + P);
        ic.intoArray(groupSums, (m * groups + g) * np + n0 + 2 * P);
        id.intoArray(groupSums, (m * groups + g) * np + n0 + 3 * P);
      }
      fa =
          ((FloatVector) ia.convert(VectorOperators.I2F, 0))
              .fma(FloatVector.fromArray(FS, scales, n0 * groups + g * P), fa);
      fb =
          ((FloatVector) ib.convert(VectorOperators.I2F, 0))
              .fma(FloatVector.fromArray(FS, scales, (n0 + P) * groups + g * P), fb);
      fc =
          ((FloatVector) ic.convert(VectorOperators.I2F, 0))
              .fma(FloatVector.fromArray(FS, scales, (n0 + 2 * P) * groups + g * P), fc);
      fd =
          ((FloatVector) id.convert(VectorOperators.I2F, 0))
              .fma(FloatVector.fromArray(FS, scales, (n0 + 3 * P) * groups + g * P), fd);
    }
    fa.intoArray(acc, m * np + n0);
    fb.intoArray(acc, m * np + n0 + P);
    fc.intoArray(acc, m * np + n0 + 2 * P);
    fd.intoArray(acc, m * np + n0 + 3 * P);
  }

  /**
   * Rows [m, m + 4) of panels {@code n0} and, when {@code two}, {@code n0 + P}: each word decoded
   * once for four rows, each activation broadcast serving both panels. The vector work is split
   * into {@link #blockTwoPanels} / {@link #blockOnePanel} (one flush period) and this method's
   * group epilogue over {@code isum}, so no method grows past C2's inlining budget and no vector
   * crosses a call (see the class comment).
   */
  private void fourRows(
      int[] pairs,
      int[] codeSums,
      float[] acc,
      int[] groupSums,
      int[] isum,
      short[] partial,
      int m,
      int n0,
      boolean two) {
    int np = panels.nPadded;
    int groups = panels.groups;
    int panelCount = two ? 2 : 1;
    int sums = panelCount * BLOCK_ROWS * P;
    for (int g = 0; g < groups; g++) {
      java.util.Arrays.fill(isum, 0, sums, 0);
      int wEnd = panels.groupStart[g + 1] / 8;
      for (int w0 = panels.groupStart[g] / 8; w0 < wEnd; w0 += CENTRED_FLUSH_WORDS) {
        int w1 = Math.min(wEnd, w0 + CENTRED_FLUSH_WORDS);
        if (two) {
          blockTwoPanels(pairs, partial, isum, m, n0, w0, w1);
        } else {
          blockOnePanel(pairs, partial, isum, m, n0, w0, w1);
        }
      }
      // isum[(panel * BLOCK_ROWS + row) * P + lane]
      for (int panel = 0; panel < panelCount; panel++) {
        int n = n0 + panel * P;
        FloatVector ws = FloatVector.fromArray(FS, scales, n * groups + g * P);
        for (int r = 0; r < BLOCK_ROWS; r++) {
          IntVector i =
              IntVector.fromArray(IS, isum, (panel * BLOCK_ROWS + r) * P)
                  .neg()
                  .sub(zeroRest * codeSums[(m + r) * groups + g]);
          if (groupSums != null) {
            i.intoArray(groupSums, ((m + r) * groups + g) * np + n);
          }
          int o = (m + r) * np + n;
          ((FloatVector) i.convert(VectorOperators.I2F, 0))
              .fma(ws, FloatVector.fromArray(FS, acc, o))
              .intoArray(acc, o);
        }
      }
    }
  }

  /**
   * Words [w0, w1) (at most {@link #CENTRED_FLUSH_WORDS}) of rows [m, m + 4), panels {@code n0} and
   * {@code n0 + P}, summed in 16-bit lanes and added to {@code isum} as int32.
   */
  private void blockTwoPanels(
      int[] pairs, short[] partial, int[] isum, int m, int n0, int w0, int w1) {
    int[] words = panels.words;
    int half = panels.kPadded / 2;
    int panelWords = (panels.kPadded / 8) * P;
    int baseA = (n0 / P) * panelWords;
    int baseB = baseA + panelWords;
    int x0 = m * half;
    ShortVector sa0 = ShortVector.zero(SS);
    ShortVector sa1 = ShortVector.zero(SS);
    ShortVector sa2 = ShortVector.zero(SS);
    ShortVector sa3 = ShortVector.zero(SS);
    ShortVector sb0 = ShortVector.zero(SS);
    ShortVector sb1 = ShortVector.zero(SS);
    ShortVector sb2 = ShortVector.zero(SS);
    ShortVector sb3 = ShortVector.zero(SS);
    for (int w = w0; w < w1; w++) {
      ShortVector qa =
          IntVector.fromArray(IS, words, baseA + w * P)
              .reinterpretAsShorts()
              .lanewise(VectorOperators.XOR, CENTRE);
      ShortVector qb =
          IntVector.fromArray(IS, words, baseB + w * P)
              .reinterpretAsShorts()
              .lanewise(VectorOperators.XOR, CENTRE);
      // A loop over the 4 steps, not 4 copies, to stay within C2's inlining budget.
      for (int j = 0; j < 4; j++) {
        int up = 12 - 4 * j;
        ShortVector ca = qa.lanewise(VectorOperators.LSHL, up).lanewise(VectorOperators.ASHR, 12);
        ShortVector cb = qb.lanewise(VectorOperators.LSHL, up).lanewise(VectorOperators.ASHR, 12);
        int x = x0 + w * 4 + j;
        ShortVector v = IntVector.broadcast(IS, pairs[x]).reinterpretAsShorts();
        sa0 = sa0.sub(ca.mul(v));
        sb0 = sb0.sub(cb.mul(v));
        v = IntVector.broadcast(IS, pairs[x + half]).reinterpretAsShorts();
        sa1 = sa1.sub(ca.mul(v));
        sb1 = sb1.sub(cb.mul(v));
        v = IntVector.broadcast(IS, pairs[x + 2 * half]).reinterpretAsShorts();
        sa2 = sa2.sub(ca.mul(v));
        sb2 = sb2.sub(cb.mul(v));
        v = IntVector.broadcast(IS, pairs[x + 3 * half]).reinterpretAsShorts();
        sa3 = sa3.sub(ca.mul(v));
        sb3 = sb3.sub(cb.mul(v));
      }
    }
    sa0.intoArray(partial, 0);
    sa1.intoArray(partial, 2 * P);
    sa2.intoArray(partial, 4 * P);
    sa3.intoArray(partial, 6 * P);
    sb0.intoArray(partial, 8 * P);
    sb1.intoArray(partial, 10 * P);
    sb2.intoArray(partial, 12 * P);
    sb3.intoArray(partial, 14 * P);
    flush(partial, isum, 2 * BLOCK_ROWS);
  }

  /** {@link #blockTwoPanels} for a single panel (a thread's last, unpaired one). */
  private void blockOnePanel(
      int[] pairs, short[] partial, int[] isum, int m, int n0, int w0, int w1) {
    int[] words = panels.words;
    int half = panels.kPadded / 2;
    int base = (n0 / P) * (panels.kPadded / 8) * P;
    int x0 = m * half;
    ShortVector s0 = ShortVector.zero(SS);
    ShortVector s1 = ShortVector.zero(SS);
    ShortVector s2 = ShortVector.zero(SS);
    ShortVector s3 = ShortVector.zero(SS);
    for (int w = w0; w < w1; w++) {
      ShortVector q =
          IntVector.fromArray(IS, words, base + w * P)
              .reinterpretAsShorts()
              .lanewise(VectorOperators.XOR, CENTRE);
      for (int j = 0; j < 4; j++) {
        ShortVector c =
            q.lanewise(VectorOperators.LSHL, 12 - 4 * j).lanewise(VectorOperators.ASHR, 12);
        int x = x0 + w * 4 + j;
        s0 = s0.sub(c.mul(IntVector.broadcast(IS, pairs[x]).reinterpretAsShorts()));
        s1 = s1.sub(c.mul(IntVector.broadcast(IS, pairs[x + half]).reinterpretAsShorts()));
        s2 = s2.sub(c.mul(IntVector.broadcast(IS, pairs[x + 2 * half]).reinterpretAsShorts()));
        s3 = s3.sub(c.mul(IntVector.broadcast(IS, pairs[x + 3 * half]).reinterpretAsShorts()));
      }
    }
    s0.intoArray(partial, 0);
    s1.intoArray(partial, 2 * P);
    s2.intoArray(partial, 4 * P);
    s3.intoArray(partial, 6 * P);
    flush(partial, isum, BLOCK_ROWS);
  }

  /**
   * Adds both signed 16-bit halves of each 32-bit lane of the first {@code count} vectors in {@code
   * partial} to the int32 sums in {@code isum}. The 16-bit sums pass through memory, not as
   * parameters: a vector passed to a method C2 does not inline is boxed on the heap.
   */
  private static void flush(short[] partial, int[] isum, int count) {
    for (int i = 0; i < count; i++) {
      IntVector v = ShortVector.fromArray(SS, partial, i * 2 * P).reinterpretAsInts();
      IntVector.fromArray(IS, isum, i * P)
          .add(v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
          .add(v.lanewise(VectorOperators.ASHR, 16))
          .intoArray(isum, i * P);
    }
  }
}
