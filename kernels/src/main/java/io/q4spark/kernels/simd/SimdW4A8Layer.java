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
 *   step j = 0..3:   c = (short >>> 4j) &amp; 0xF                 one code per 16-bit lane
 *                    pair(w, j) = qx[8w+j] (low) | qx[8w+4+j] (high)   one 32-bit broadcast
 *                    s16 += c * pair(w, j)                      16-bit multiply and add
 *   every FLUSH_WORDS words and at each group end:
 *                    s32(n) += low(s16) + high(s16)             both halves into the column's int32
 *   at each group end:
 *                    isum(g, n) = s32(n) - codeZero * sum over k in g of qx[k]    exact, = reference
 *                    acc(n)    += float(isum(g, n)) * ws(g, n)                    fp32 FMA
 * </pre>
 *
 * Codes stay unsigned (0..15) in the inner loop and the zero point comes off once per group, so a
 * step is a shift, an and, a multiply and an add for twice as many lanes as an fp32 FMA has: about
 * half the instructions of the fp32 path per multiply-add. Rows are register-blocked by {@link
 * #BLOCK_ROWS}: each word is decoded once for that many rows.
 */
final class SimdW4A8Layer {
  private static final VectorSpecies<Float> FS = SimdW4A16Kernel.FS;
  private static final VectorSpecies<Integer> IS = SimdW4A16Kernel.IS;
  private static final VectorSpecies<Short> SS =
      IS.withLanes(short.class).withShape(IS.vectorShape());
  private static final int P = IS.length();

  /**
   * Words summed in 16-bit lanes before they are flushed to int32: a lane takes 4 products per
   * word, each at most 128 * 15 = 1920 in magnitude (qx = -128 is reachable), and 16 of them reach
   * 30720, just below the 32767 a signed 16-bit lane holds.
   */
  static final int FLUSH_WORDS = 4;

  /**
   * Rows sharing each decoded word: 4 rows keep 4 x 3 accumulators (16-bit, int32, fp32) plus the 4
   * decoded code vectors in 16 of the 32 AVX-512 registers, and already amortize the decode (6 of
   * the 18 instructions a row needs per word at one row) to a quarter.
   */
  static final int BLOCK_ROWS = 4;

  /** The 4-bit code mask, per 16-bit lane. */
  private static final short NIBBLE = 0xF;

  private final SimdPanels panels;
  private final int threads;
  private final int codeZero;

  /** Weight scales (already in the model dtype), panel-major as {@code SimdW4A16Layer.scales}. */
  private final float[] scales;

  SimdW4A8Layer(QuantizedLinear layer, float[] weightScales, int threads) {
    assert SS.length() == 2 * P;
    this.panels = SimdPanels.of(layer, P);
    this.threads = threads;
    this.codeZero = QuantizedLinear.codeZero(layer.config().weightType());
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
    java.util.Arrays.fill(pairs, 0, rows * half, 0);
    java.util.Arrays.fill(codeSums, 0, rows * groups, 0);
    // fourRowsTwoPanels adds each group into acc; the other kernels overwrite their rows.
    java.util.Arrays.fill(acc, 0, rows * np, 0f);
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
    int panelCount = np / P;
    int blocks = (rows + BLOCK_ROWS - 1) / BLOCK_ROWS;
    // Fewer panels than threads (narrow layers): split the rows too, so every thread gets work.
    int rowParts = Math.max(1, Math.min(blocks, (threads + panelCount - 1) / panelCount));
    ParallelRange.run(
        threads,
        panelCount * rowParts,
        1,
        (from, to) -> {
          for (int u = from; u < to; ) {
            int n0 = u / rowParts * P;
            int part = u % rowParts;
            // Two neighbouring panels of the same rows: the one-row kernel runs them together,
            // each activation broadcast then serving both.
            boolean two = rowParts == 1 && u + 1 < to;
            int m0 = Math.min(rows, blocks * part / rowParts * BLOCK_ROWS);
            int m1 = Math.min(rows, blocks * (part + 1) / rowParts * BLOCK_ROWS);
            int m = m0;
            for (; m + BLOCK_ROWS <= m1; m += BLOCK_ROWS) {
              if (two) {
                fourRowsTwoPanels(pairs, codeSums, acc, groupSums, m, n0);
              } else {
                fourRows(pairs, codeSums, acc, groupSums, m, n0);
              }
            }
            for (; m < m1; m++) {
              if (two) {
                oneRowTwoPanels(pairs, codeSums, acc, groupSums, m, n0);
              } else {
                oneRow(pairs, codeSums, acc, groupSums, m, n0);
              }
            }
            u += two ? 2 : 1;
          }
        });
    return acc;
  }

  int groups() {
    return panels.groups;
  }

  int nPadded() {
    return panels.nPadded;
  }

  /** One pair of activation codes broadcast to every 32-bit lane, seen as 16-bit lanes. */
  private static ShortVector pair(int[] pairs, int index) {
    return IntVector.broadcast(IS, pairs[index]).reinterpretAsShorts();
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
          s0 = s0.add(q.and(NIBBLE).mul(pair(pairs, x)));
          t0 = t0.add(q.lanewise(VectorOperators.LSHR, 4).and(NIBBLE).mul(pair(pairs, x + 1)));
          s0 = s0.add(q.lanewise(VectorOperators.LSHR, 8).and(NIBBLE).mul(pair(pairs, x + 2)));
          t0 = t0.add(q.lanewise(VectorOperators.LSHR, 12).mul(pair(pairs, x + 3)));
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
            ShortVector x = pair(pairs, x0 + w * 4 + j);
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
   * Rows [m, m + 4), panels {@code n0} and {@code n0 + P}: each word decoded once for four rows and
   * each activation broadcast serving both panels. The fp32 sums live in {@code acc} (one load and
   * store per group), so the 16 integer accumulators fit in registers.
   */
  private void fourRowsTwoPanels(
      int[] pairs, int[] codeSums, float[] acc, int[] groupSums, int m, int n0) {
    int np = panels.nPadded;
    int groups = panels.groups;
    int[] words = panels.words;
    int panelWords = (panels.kPadded / 8) * P;
    int baseA = (n0 / P) * panelWords;
    int baseB = baseA + panelWords;
    int half = panels.kPadded / 2;
    int x0 = m * half;
    for (int g = 0; g < groups; g++) {
      IntVector a0 = IntVector.zero(IS);
      IntVector a1 = IntVector.zero(IS);
      IntVector a2 = IntVector.zero(IS);
      IntVector a3 = IntVector.zero(IS);
      IntVector b0 = IntVector.zero(IS);
      IntVector b1 = IntVector.zero(IS);
      IntVector b2 = IntVector.zero(IS);
      IntVector b3 = IntVector.zero(IS);
      int wEnd = panels.groupStart[g + 1] / 8;
      for (int w0 = panels.groupStart[g] / 8; w0 < wEnd; w0 += FLUSH_WORDS) {
        int w1 = Math.min(wEnd, w0 + FLUSH_WORDS);
        ShortVector sa0 = ShortVector.zero(SS);
        ShortVector sa1 = ShortVector.zero(SS);
        ShortVector sa2 = ShortVector.zero(SS);
        ShortVector sa3 = ShortVector.zero(SS);
        ShortVector sb0 = ShortVector.zero(SS);
        ShortVector sb1 = ShortVector.zero(SS);
        ShortVector sb2 = ShortVector.zero(SS);
        ShortVector sb3 = ShortVector.zero(SS);
        for (int w = w0; w < w1; w++) {
          ShortVector qa = IntVector.fromArray(IS, words, baseA + w * P).reinterpretAsShorts();
          ShortVector qb = IntVector.fromArray(IS, words, baseB + w * P).reinterpretAsShorts();
          // A loop, not 4 copies: see fourRows.
          for (int j = 0; j < 4; j++) {
            ShortVector ca = qa.lanewise(VectorOperators.LSHR, 4 * j).and(NIBBLE);
            ShortVector cb = qb.lanewise(VectorOperators.LSHR, 4 * j).and(NIBBLE);
            int x = x0 + w * 4 + j;
            ShortVector v = pair(pairs, x);
            sa0 = sa0.add(ca.mul(v));
            sb0 = sb0.add(cb.mul(v));
            v = pair(pairs, x + half);
            sa1 = sa1.add(ca.mul(v));
            sb1 = sb1.add(cb.mul(v));
            v = pair(pairs, x + 2 * half);
            sa2 = sa2.add(ca.mul(v));
            sb2 = sb2.add(cb.mul(v));
            v = pair(pairs, x + 3 * half);
            sa3 = sa3.add(ca.mul(v));
            sb3 = sb3.add(cb.mul(v));
          }
        }
        IntVector va0 = sa0.reinterpretAsInts();
        a0 =
            a0.add(va0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(va0.lanewise(VectorOperators.ASHR, 16));
        IntVector va1 = sa1.reinterpretAsInts();
        a1 =
            a1.add(va1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(va1.lanewise(VectorOperators.ASHR, 16));
        IntVector va2 = sa2.reinterpretAsInts();
        a2 =
            a2.add(va2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(va2.lanewise(VectorOperators.ASHR, 16));
        IntVector va3 = sa3.reinterpretAsInts();
        a3 =
            a3.add(va3.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(va3.lanewise(VectorOperators.ASHR, 16));
        IntVector vb0 = sb0.reinterpretAsInts();
        b0 =
            b0.add(vb0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(vb0.lanewise(VectorOperators.ASHR, 16));
        IntVector vb1 = sb1.reinterpretAsInts();
        b1 =
            b1.add(vb1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(vb1.lanewise(VectorOperators.ASHR, 16));
        IntVector vb2 = sb2.reinterpretAsInts();
        b2 =
            b2.add(vb2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(vb2.lanewise(VectorOperators.ASHR, 16));
        IntVector vb3 = sb3.reinterpretAsInts();
        b3 =
            b3.add(vb3.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(vb3.lanewise(VectorOperators.ASHR, 16));
      }
      // Inline, not a helper: see oneRow.
      FloatVector wa = FloatVector.fromArray(FS, scales, n0 * groups + g * P);
      FloatVector wb = FloatVector.fromArray(FS, scales, (n0 + P) * groups + g * P);
      int z0 = codeZero * codeSums[m * groups + g];
      a0 = a0.sub(z0);
      b0 = b0.sub(z0);
      int z1 = codeZero * codeSums[(m + 1) * groups + g];
      a1 = a1.sub(z1);
      b1 = b1.sub(z1);
      int z2 = codeZero * codeSums[(m + 2) * groups + g];
      a2 = a2.sub(z2);
      b2 = b2.sub(z2);
      int z3 = codeZero * codeSums[(m + 3) * groups + g];
      a3 = a3.sub(z3);
      b3 = b3.sub(z3);
      if (groupSums != null) {
        a0.intoArray(groupSums, (m * groups + g) * np + n0);
        b0.intoArray(groupSums, (m * groups + g) * np + n0 + P);
        a1.intoArray(groupSums, ((m + 1) * groups + g) * np + n0);
        b1.intoArray(groupSums, ((m + 1) * groups + g) * np + n0 + P);
        a2.intoArray(groupSums, ((m + 2) * groups + g) * np + n0);
        b2.intoArray(groupSums, ((m + 2) * groups + g) * np + n0 + P);
        a3.intoArray(groupSums, ((m + 3) * groups + g) * np + n0);
        b3.intoArray(groupSums, ((m + 3) * groups + g) * np + n0 + P);
      }
      ((FloatVector) a0.convert(VectorOperators.I2F, 0))
          .fma(wa, FloatVector.fromArray(FS, acc, m * np + n0))
          .intoArray(acc, m * np + n0);
      ((FloatVector) b0.convert(VectorOperators.I2F, 0))
          .fma(wb, FloatVector.fromArray(FS, acc, m * np + n0 + P))
          .intoArray(acc, m * np + n0 + P);
      ((FloatVector) a1.convert(VectorOperators.I2F, 0))
          .fma(wa, FloatVector.fromArray(FS, acc, (m + 1) * np + n0))
          .intoArray(acc, (m + 1) * np + n0);
      ((FloatVector) b1.convert(VectorOperators.I2F, 0))
          .fma(wb, FloatVector.fromArray(FS, acc, (m + 1) * np + n0 + P))
          .intoArray(acc, (m + 1) * np + n0 + P);
      ((FloatVector) a2.convert(VectorOperators.I2F, 0))
          .fma(wa, FloatVector.fromArray(FS, acc, (m + 2) * np + n0))
          .intoArray(acc, (m + 2) * np + n0);
      ((FloatVector) b2.convert(VectorOperators.I2F, 0))
          .fma(wb, FloatVector.fromArray(FS, acc, (m + 2) * np + n0 + P))
          .intoArray(acc, (m + 2) * np + n0 + P);
      ((FloatVector) a3.convert(VectorOperators.I2F, 0))
          .fma(wa, FloatVector.fromArray(FS, acc, (m + 3) * np + n0))
          .intoArray(acc, (m + 3) * np + n0);
      ((FloatVector) b3.convert(VectorOperators.I2F, 0))
          .fma(wb, FloatVector.fromArray(FS, acc, (m + 3) * np + n0 + P))
          .intoArray(acc, (m + 3) * np + n0 + P);
    }
  }

  /** Rows [m, m + 4), panel {@code n0}: each word decoded once for the four rows. */
  private void fourRows(int[] pairs, int[] codeSums, float[] acc, int[] groupSums, int m, int n0) {
    int np = panels.nPadded;
    int groups = panels.groups;
    int[] words = panels.words;
    int panelBase = (n0 / P) * (panels.kPadded / 8) * P;
    int half = panels.kPadded / 2;
    int x0 = m * half;
    FloatVector f0 = FloatVector.zero(FS);
    FloatVector f1 = FloatVector.zero(FS);
    FloatVector f2 = FloatVector.zero(FS);
    FloatVector f3 = FloatVector.zero(FS);
    for (int g = 0; g < groups; g++) {
      IntVector i0 = IntVector.zero(IS);
      IntVector i1 = IntVector.zero(IS);
      IntVector i2 = IntVector.zero(IS);
      IntVector i3 = IntVector.zero(IS);
      int wEnd = panels.groupStart[g + 1] / 8;
      for (int w0 = panels.groupStart[g] / 8; w0 < wEnd; w0 += FLUSH_WORDS) {
        int w1 = Math.min(wEnd, w0 + FLUSH_WORDS);
        ShortVector s0 = ShortVector.zero(SS);
        ShortVector s1 = ShortVector.zero(SS);
        ShortVector s2 = ShortVector.zero(SS);
        ShortVector s3 = ShortVector.zero(SS);
        for (int w = w0; w < w1; w++) {
          ShortVector q = IntVector.fromArray(IS, words, panelBase + w * P).reinterpretAsShorts();
          // A loop over the 4 steps, not 4 copies: the unrolled body is too large for C2's
          // inlining budget (NodeCountInliningCutoff) and leaves the vector calls boxed.
          for (int j = 0; j < 4; j++) {
            ShortVector c = q.lanewise(VectorOperators.LSHR, 4 * j).and(NIBBLE);
            int x = x0 + w * 4 + j;
            s0 = s0.add(c.mul(pair(pairs, x)));
            s1 = s1.add(c.mul(pair(pairs, x + half)));
            s2 = s2.add(c.mul(pair(pairs, x + 2 * half)));
            s3 = s3.add(c.mul(pair(pairs, x + 3 * half)));
          }
        }
        IntVector v0 = s0.reinterpretAsInts();
        i0 =
            i0.add(v0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(v0.lanewise(VectorOperators.ASHR, 16));
        IntVector v1 = s1.reinterpretAsInts();
        i1 =
            i1.add(v1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(v1.lanewise(VectorOperators.ASHR, 16));
        IntVector v2 = s2.reinterpretAsInts();
        i2 =
            i2.add(v2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(v2.lanewise(VectorOperators.ASHR, 16));
        IntVector v3 = s3.reinterpretAsInts();
        i3 =
            i3.add(v3.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(v3.lanewise(VectorOperators.ASHR, 16));
      }
      FloatVector ws = FloatVector.fromArray(FS, scales, n0 * groups + g * P);
      i0 = i0.sub(codeZero * codeSums[m * groups + g]);
      i1 = i1.sub(codeZero * codeSums[(m + 1) * groups + g]);
      i2 = i2.sub(codeZero * codeSums[(m + 2) * groups + g]);
      i3 = i3.sub(codeZero * codeSums[(m + 3) * groups + g]);
      if (groupSums != null) {
        i0.intoArray(groupSums, (m * groups + g) * np + n0);
        i1.intoArray(groupSums, ((m + 1) * groups + g) * np + n0);
        i2.intoArray(groupSums, ((m + 2) * groups + g) * np + n0);
        i3.intoArray(groupSums, ((m + 3) * groups + g) * np + n0);
      }
      f0 = ((FloatVector) i0.convert(VectorOperators.I2F, 0)).fma(ws, f0);
      f1 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(ws, f1);
      f2 = ((FloatVector) i2.convert(VectorOperators.I2F, 0)).fma(ws, f2);
      f3 = ((FloatVector) i3.convert(VectorOperators.I2F, 0)).fma(ws, f3);
    }
    f0.intoArray(acc, m * np + n0);
    f1.intoArray(acc, (m + 1) * np + n0);
    f2.intoArray(acc, (m + 2) * np + n0);
    f3.intoArray(acc, (m + 3) * np + n0);
  }
}
