package io.q4spark.kernels.simd;

import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;

/**
 * The SIMD kernels' weight layout: column panels of {@code P} outputs (P = float lanes of the
 * preferred vector species: 8 on AVX2, 16 on AVX-512), each panel holding every input position as
 * K-packed words, one word per column, so one vector load brings 8 codes of P neighbouring columns:
 *
 * <pre>
 *   word(w, n) = panels[(n / P) * (Kp / 8) * P + w * P + n % P]      w = position / 8
 *   code(pos, n) = (word(pos / 8, n) >>> 4 * (pos % 8)) &amp; 0xF
 *
 *   panel 0 (columns 0..P-1)        panel 1 (columns P..2P-1)
 *   w=0  | c0 c1 ... cP-1 |         | cP ... |
 *   w=1  | c0 c1 ... cP-1 |         | ...    |
 *   ...                              ...
 * </pre>
 *
 * Positions are input features in group order: group g occupies positions [start(g), start(g+1)),
 * its members in increasing k, padded with zero codes to a multiple of 8 so no word straddles two
 * groups. Without act-order this is the identity (Kp = K). N is padded with zero columns to a
 * multiple of P. {@link #toMatrix} is the inverse of {@link #of}.
 */
final class SimdPanels {
  final int k;
  final int n;

  /** Columns rounded up to a multiple of {@link #p}. */
  final int nPadded;

  /** Panel width: columns per panel. */
  final int p;

  /** Positions: K plus the padding of each group to a multiple of 8. */
  final int kPadded;

  /** Group count. */
  final int groups;

  /** Position where each group starts; {@code groupStart[groups] = kPadded}. */
  final int[] groupStart;

  /** Position of each input feature k. */
  final int[] positionOf;

  /** Group of each input feature k. */
  final int[] groupOf;

  /** Packed words, as in the class comment. */
  final int[] words;

  private SimdPanels(
      int k,
      int n,
      int p,
      int groups,
      int[] groupStart,
      int[] positionOf,
      int[] groupOf,
      int[] words) {
    this.k = k;
    this.n = n;
    this.p = p;
    this.nPadded = (n + p - 1) / p * p;
    this.groups = groups;
    this.groupStart = groupStart;
    this.kPadded = groupStart[groups];
    this.positionOf = positionOf;
    this.groupOf = groupOf;
    this.words = words;
  }

  /** Packs {@code layer}'s weight codes into panels of width {@code p}. */
  static SimdPanels of(QuantizedLinear layer, int p) {
    int k = layer.config().k();
    int n = layer.config().n();
    int groups = layer.config().numGroups();
    int[] count = new int[groups];
    for (int kk = 0; kk < k; kk++) {
      count[layer.group(kk)]++;
    }
    int[] groupStart = new int[groups + 1];
    for (int g = 0; g < groups; g++) {
      groupStart[g + 1] = groupStart[g] + (count[g] + 7) / 8 * 8;
    }
    int[] next = groupStart.clone();
    int[] positionOf = new int[k];
    int[] groupOf = new int[k];
    for (int kk = 0; kk < k; kk++) {
      groupOf[kk] = layer.group(kk);
      positionOf[kk] = next[groupOf[kk]]++;
    }
    int nPadded = (n + p - 1) / p * p;
    int wordsPerColumn = groupStart[groups] / 8;
    int[] words = new int[nPadded * wordsPerColumn];
    PackedInt4Matrix w = layer.weight();
    for (int kk = 0; kk < k; kk++) {
      int pos = positionOf[kk];
      int shift = 4 * (pos % 8);
      int rowBase = (pos / 8) * p;
      for (int nn = 0; nn < n; nn++) {
        words[(nn / p) * wordsPerColumn * p + rowBase + nn % p] |= w.code(kk, nn) << shift;
      }
    }
    return new SimdPanels(k, n, p, groups, groupStart, positionOf, groupOf, words);
  }

  /** Word index of (word row w, column nn). */
  int wordIndex(int w, int nn) {
    return (nn / p) * (kPadded / 8) * p + w * p + nn % p;
  }

  /** The codes back as a [K, N] matrix in {@code layout}: the inverse of {@link #of}. */
  PackedInt4Matrix toMatrix(Int4Layout layout) {
    byte[] codes = new byte[k * n];
    for (int kk = 0; kk < k; kk++) {
      int pos = positionOf[kk];
      for (int nn = 0; nn < n; nn++) {
        codes[kk * n + nn] = (byte) ((words[wordIndex(pos / 8, nn)] >>> (4 * (pos % 8))) & 0xF);
      }
    }
    return PackedInt4Matrix.fromCodes(layout, k, n, codes);
  }
}
