import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Probe for issue 3's question whether HotSpot's C2 makes 16-bit multiply-adds ({@code vpmaddwd},
 * {@code vpdpwssd} with AVX-512 VNNI) out of plain Java loops, and whether that beats the Vector
 * API's 16-bit multiply and add that {@code SimdW4A8Layer} uses. One thread, operands in L1.
 *
 * <p>Run: {@code java --add-modules jdk.incubator.vector C2MulAddProbe.java} (add {@code
 * -XX:-UseSuperWord} to see the loops without C2's vectorizer). Results are in {@code
 * ../cpu-2026-12-02.md}.
 */
public class C2MulAddProbe {
  static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED;
  static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;

  /** The shape C2 turns into MulAddS2I / MulAddVS2VI: pairs of shorts into one int. */
  static void idiom(short[] a, short[] b, int[] out, int n) {
    for (int i = 0; i < n; i++) {
      out[i] += a[2 * i] * b[2 * i] + a[2 * i + 1] * b[2 * i + 1];
    }
  }

  /** The same multiply-adds summed into one int. */
  static int idiomReduction(short[] a, short[] b, int n) {
    int s = 0;
    for (int i = 0; i < n; i++) {
      s += a[2 * i] * b[2 * i] + a[2 * i + 1] * b[2 * i + 1];
    }
    return s;
  }

  /**
   * The Vector API's way in the same memory-bound shape: 16-bit multiplies summed in 16-bit lanes
   * over four vectors, then widened to int and added to {@code out}.
   */
  static void vectorApi(short[] a, short[] b, int[] out, int values) {
    int step = 4 * S.length();
    for (int i = 0; i < values; i += step) {
      ShortVector acc = ShortVector.fromArray(S, a, i).mul(ShortVector.fromArray(S, b, i));
      for (int j = 1; j < 4; j++) {
        int at = i + j * S.length();
        acc = acc.add(ShortVector.fromArray(S, a, at).mul(ShortVector.fromArray(S, b, at)));
      }
      int o = (i / step) * 2 * I.length() % (out.length - 2 * I.length());
      IntVector lo = (IntVector) acc.convertShape(VectorOperators.S2I, I, 0);
      IntVector hi = (IntVector) acc.convertShape(VectorOperators.S2I, I, 1);
      lo.add(IntVector.fromArray(I, out, o)).intoArray(out, o);
      hi.add(IntVector.fromArray(I, out, o + I.length())).intoArray(out, o + I.length());
    }
  }

  public static void main(String[] args) {
    int n = 1024;
    short[] a = new short[2 * n];
    short[] b = new short[2 * n];
    int[] out = new int[n];
    java.util.Random r = new java.util.Random(1);
    for (int i = 0; i < 2 * n; i++) {
      a[i] = (short) (r.nextInt(256) - 128); // int8 activation codes
      b[i] = (short) r.nextInt(16); // int4 weight codes
    }
    int iters = 200_000;
    double macs = 2.0 * n * iters;
    for (int rep = 0; rep < 6; rep++) {
      long t0 = System.nanoTime();
      for (int it = 0; it < iters; it++) {
        idiom(a, b, out, n);
      }
      long t1 = System.nanoTime();
      int s = 0;
      for (int it = 0; it < iters; it++) {
        s += idiomReduction(a, b, n);
      }
      long t2 = System.nanoTime();
      for (int it = 0; it < iters; it++) {
        vectorApi(a, b, out, 2 * n);
      }
      long t3 = System.nanoTime();
      System.out.printf(
          "GMAC/s: C2 idiom %.1f, C2 idiom as a reduction %.1f, Vector API 16-bit %.1f (%d %d)%n",
          macs / (t1 - t0), macs / (t2 - t1), macs / (t3 - t2), out[7], s);
    }
  }
}
