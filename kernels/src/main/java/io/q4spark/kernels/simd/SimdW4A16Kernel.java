package io.q4spark.kernels.simd;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelCapabilities;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearKernel;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.PreparedLinear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import java.util.EnumSet;
import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * W4A16 on the Java Vector API, in the preferred species (AVX2, AVX-512 and NEON alike), threads
 * splitting the output columns. Weights live in {@link SimdPanels}: panels of P columns, K-packed
 * words, so one vector load brings 8 codes for each of P neighbouring outputs. Two paths, chosen
 * per call by {@code SimdW4A16Layer}:
 *
 * <pre>
 *   streaming (fp32 activations, fewer than 6 rows): weights decoded in registers, each word once
 *   for a block of 4 rows; remaining rows four panels at a time (each broadcast serving four)
 *     for each group g:
 *       t = sum over positions i of code(i, n) * x[i]             fp32, four independent chains
 *       acc += scale(g, n) * t - zero(g, n) * scale(g, n) * sum_i x[i]
 *
 *   streaming, rounded (fp16 / bf16 activations, fewer than 6 rows): each weight dequantized,
 *   rounded to the dtype as the reference does (on the bit pattern, exact for both types) and
 *   multiplied in, in registers, for rows in pairs; nothing is written (4096x4096, 2 threads, one
 *   row: 1.1-1.2 ms for either type, against 2.8 through the buffer; two rows: 1.5-1.6)
 *
 *   buffered (6 rows or more):
 *     for each K chunk and pair of panels:
 *       buf[i][n] = round_act((code(i, n) - zero(g(i), n)) * scale(g(i), n))   once per call
 *       out[6 rows][2P columns] += x * buf                       6x2-panel register-blocked FMA
 * </pre>
 *
 * The streaming path folds the zero point out of the inner loop, and decodes without a shift per
 * nibble: {@code word & (0xF << 4j)} converts exactly to {@code code * 2^4j}, so the activation at
 * nibble j is pre-scaled by {@code 2^-4j} once per call (the top nibble, which would set the sign
 * bit, is shifted down instead). The buffered path rounds each dequantized weight to the activation
 * dtype exactly as the reference does; only the fp32 summation order differs. Act-order layers are
 * handled by sorting input features by group at prepare time and permuting the activations per
 * call.
 *
 * <p>What limits the streaming path (measured on the 2-core AVX-512 EPYC, one thread, weights in
 * L2): 28 GMAC/s per core, against 40 with the decode taken out and 59 for bare FMAs (one 512-bit
 * FMA per cycle). Neither more accumulator chains (8: 28 GMAC/s), vector loads instead of
 * broadcasts (28), a float decode through the exponent bits instead of a conversion (21), nor a
 * 16-entry table lookup per nibble ({@code selectFrom}: 23) beat the mask-and-convert decode: the
 * conversion competes with the FMAs. Int8 activations avoid it ({@link SimdW4A8Kernel}).
 */
public final class SimdW4A16Kernel implements LinearKernel {
  static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
  static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;

  /**
   * Positions per K chunk of the buffered path: a micro-kernel block's activations for one chunk (6
   * rows x 1024 x 4 bytes = 24 KiB) stay in L1, and a pair of panels' dequantized weights (1024 x
   * 2P x 4 bytes = 64 KiB on AVX2) in L2, while the row blocks stream past.
   */
  static final int CHUNK_POSITIONS = 1024;

  private static final KernelCapabilities CAPABILITIES =
      new KernelCapabilities(
          QuantScheme.W4A16,
          List.of(ScalarType.UINT4B8, ScalarType.UINT4),
          EnumSet.allOf(DType.class),
          null,
          true,
          8,
          8,
          true,
          true);

  @Override
  public KernelCapabilities capabilities() {
    return CAPABILITIES;
  }

  @Override
  public io.q4spark.kernels.Acceptance canImplement(LinearLayerConfig config) {
    if (FS.length() != IS.length() || FS.length() < 4) {
      return io.q4spark.kernels.Acceptance.reject(
          "SimdW4A16Kernel needs at least 4 float lanes per vector, but the preferred species here is "
              + FS);
    }
    return LinearKernel.super.canImplement(config);
  }

  @Override
  public PreparedLinear prepare(QuantizedLinear layer, KernelOptions options) {
    return new SimdW4A16Layer(layer, options.threads());
  }

  /** Describes the vector shape in use, for {@code q4spark doctor}. */
  public static String species() {
    return FS + " (" + FS.length() + " float lanes)";
  }

  static FloatVector decode(IntVector word, int nibble) {
    IntVector q =
        nibble < 7 ? word.and(0xF << (4 * nibble)) : word.lanewise(VectorOperators.LSHR, 28);
    return (FloatVector) q.convert(VectorOperators.I2F, 0);
  }
}
