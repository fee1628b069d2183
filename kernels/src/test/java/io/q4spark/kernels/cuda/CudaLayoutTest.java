package io.q4spark.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.BFloat16;
import io.q4spark.kernels.DType;
import io.q4spark.kernels.Float16;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.RandomLayers;
import io.q4spark.kernels.ScalarType;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The CUDA kernels' packed layouts hold every code, scale and zero where their formulas say. */
class CudaLayoutTest {

  @ParameterizedTest
  @CsvSource({
    "64, 64, 32, uint4b8, float16, false, false",
    "256, 512, 128, uint4, bfloat16, true, false",
    "200, 72, -1, uint4b8, float16, false, false",
    "96, 136, 32, uint4, float16, true, false",
    "256, 128, 64, uint4b8, bfloat16, false, true"
  })
  void w4a16LayoutHoldsEveryWeightScaleAndZero(
      int k, int n, int g, String type, String act, boolean zp, boolean actOrder) {
    LinearLayerConfig c =
        LinearLayerConfig.of(
            "l",
            k,
            n,
            ScalarType.parse(type),
            DType.parse(act),
            g,
            zp,
            actOrder,
            QuantScheme.W4A16);
    QuantizedLinear layer = RandomLayers.layer(c, new Random(k * 31L + n), false);
    CudaW4A16Layout p = CudaW4A16Layout.pack(layer);

    assertEquals(0, p.kPadded() % CudaW4A16Layout.K_TILE);
    assertEquals(0, p.nPadded() % CudaW4A16Layout.STRIP);
    assertEquals(p.nPadded() / 8 * p.kPadded(), p.words().length);
    assertEquals((p.kPadded() - 1) / c.effectiveGroupSize() + 1, p.scaleRows());
    assertEquals(p.scaleRows() * p.nPadded(), p.scales().length);
    int[] perm = p.permutation();
    assertEquals(actOrder, perm != null);
    int zero = QuantizedLinear.codeZero(c.weightType());
    float[] scales = layer.scalesIn(c.actType());
    for (int kk = 0; kk < p.kPadded(); kk++) {
      for (int nn = 0; nn < p.nPadded(); nn++) {
        int code = p.code(kk, nn);
        if (kk < k && nn < n) {
          int orig = perm == null ? kk : perm[kk];
          assertEquals(layer.weight().code(orig, nn), code, "code at " + kk + "," + nn);
          // after the permutation, groups are contiguous runs of G again
          assertEquals(layer.group(orig), kk / c.effectiveGroupSize());
        } else {
          assertEquals(zp ? 0 : zero, code, "padding at " + kk + "," + nn);
        }
      }
    }
    short magic = c.actType() == DType.BF16 ? (short) 0x4300 : (short) 0x6400;
    for (int row = 0; row < p.scaleRows(); row++) {
      for (int nn = 0; nn < p.nPadded(); nn++) {
        int at = row * p.nPadded() + CudaW4A16Layout.permutedColumn(nn);
        boolean real = row < c.numGroups() && nn < n;
        float expected = real ? scales[row * n + nn] : 0f;
        float found =
            c.actType() == DType.BF16
                ? BFloat16.toFloat(p.scales()[at])
                : Float16.toFloat(p.scales()[at]);
        assertEquals(expected, found, "scale " + row + "," + nn);
        if (zp) {
          int z = real ? layer.zeros().code(row, nn) : 0;
          assertEquals((short) (magic | z), p.zeros()[at]);
        }
      }
    }
    if (!zp) {
      assertNull(p.zeros());
    }
    // the ring kernels' strip-major copy: the same 64-value rows, each strip's groups together
    short[] byStrip = p.byStrip(p.scales());
    assertEquals(p.scales().length, byStrip.length);
    for (int row = 0; row < p.scaleRows(); row++) {
      for (int nn = 0; nn < p.nPadded(); nn++) {
        int strip = nn / CudaW4A16Layout.STRIP;
        int within = CudaW4A16Layout.permutedColumn(nn) % CudaW4A16Layout.STRIP;
        assertEquals(
            p.scales()[row * p.nPadded() + CudaW4A16Layout.permutedColumn(nn)],
            byStrip[(strip * p.scaleRows() + row) * CudaW4A16Layout.STRIP + within],
            "strip-major scale " + row + "," + nn);
      }
    }
  }

  @ParameterizedTest
  @CsvSource({
    "256, 64, 32, int4, float16, false",
    "384, 1536, 64, uint4b8, bfloat16, false",
    "1024, 64, -1, int4, float32, false",
    "256, 136, 128, int4, float16, true"
  })
  void w4a8LayoutHoldsEveryValueAndScale(
      int k, int n, int g, String type, String act, boolean actOrder) {
    LinearLayerConfig c =
        LinearLayerConfig.of(
            "l",
            k,
            n,
            ScalarType.parse(type),
            DType.parse(act),
            g,
            false,
            actOrder,
            QuantScheme.W4A8);
    QuantizedLinear layer = RandomLayers.layer(c, new Random(k * 17L + n), false);
    CudaW4A8Layout p = CudaW4A8Layout.pack(layer);
    assertEquals(0, p.kPadded() % CudaW4A8Layout.K_TILE);
    assertEquals(p.nPadded() / 8 * p.kPadded(), p.words().length);
    int[] perm = p.permutation();
    for (int kk = 0; kk < p.kPadded(); kk++) {
      for (int nn = 0; nn < p.nPadded(); nn++) {
        int expected = 8;
        if (kk < k && nn < n) {
          expected = layer.value(perm == null ? kk : perm[kk], nn) + 8;
        }
        assertEquals(expected, p.code(kk, nn), "code at " + kk + "," + nn);
      }
    }
    float[] scales = layer.scalesIn(c.actType());
    for (int row = 0; row < p.scaleRows(); row++) {
      for (int nn = 0; nn < p.nPadded(); nn++) {
        boolean real = row < c.numGroups() && nn < n;
        assertEquals(
            real ? scales[row * n + nn] : 0f,
            p.scales()[row * p.nPadded() + CudaW4A8Layout.permutedColumn(nn)]);
      }
    }
  }

  @org.junit.jupiter.api.Test
  void permutedColumnsAreAPermutationOfEachStrip() {
    boolean[] seen16 = new boolean[64];
    boolean[] seen8 = new boolean[64];
    for (int c = 0; c < 64; c++) {
      seen16[CudaW4A16Layout.permutedColumn(c)] = true;
      seen8[CudaW4A8Layout.permutedColumn(c)] = true;
      assertEquals(64 + CudaW4A16Layout.permutedColumn(c), CudaW4A16Layout.permutedColumn(64 + c));
    }
    for (int i = 0; i < 64; i++) {
      assertTrue(seen16[i] && seen8[i], "slot " + i);
    }
  }

  @org.junit.jupiter.api.Test
  void actOrderGroupsOfTheWrongSizeAreRejectedWithTheCounts() {
    LinearLayerConfig c =
        LinearLayerConfig.of(
            "model.layers.0.mlp",
            64,
            64,
            ScalarType.UINT4B8,
            DType.F16,
            32,
            false,
            true,
            QuantScheme.W4A16);
    QuantizedLinear good = RandomLayers.layer(c, new Random(5), false);
    int[] gIdx = new int[64];
    for (int i = 0; i < 40; i++) {
      gIdx[i] = 0;
    }
    for (int i = 40; i < 64; i++) {
      gIdx[i] = 1;
    }
    QuantizedLinear bad = new QuantizedLinear(c, good.weight(), good.scales(), null, gIdx, null);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> CudaW4A16Layout.pack(bad));
    assertTrue(
        e.getMessage()
            .contains(
                "layer model.layers.0.mlp: CudaW4A16Kernel needs every act-order group to hold"
                    + " G=32 input features, but g_idx puts 40 in group 0"),
        e.getMessage());
  }
}
