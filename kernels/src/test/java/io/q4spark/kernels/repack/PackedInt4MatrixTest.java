package io.q4spark.kernels.repack;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class PackedInt4MatrixTest {
  private static final long SEED = 20261124L;

  private static byte[] randomCodes(Random r, int k, int n) {
    byte[] c = new byte[k * n];
    for (int i = 0; i < c.length; i++) {
      c[i] = (byte) r.nextInt(16);
    }
    return c;
  }

  @Test
  void formulasArePinnedOnOneExample() {
    // K = 8, N = 8, code(k, n) = (k + 2n) % 16: one word per packed row or column.
    byte[] codes = new byte[64];
    for (int k = 0; k < 8; k++) {
      for (int n = 0; n < 8; n++) {
        codes[k * 8 + n] = (byte) ((k + 2 * n) % 16);
      }
    }
    PackedInt4Matrix nk8 = PackedInt4Matrix.fromCodes(Int4Layout.N_K8, 8, 8, codes);
    // Row n = 1 of [N, K/8]: codes k = 0..7 are 2..9, element 0 in the low nibble.
    assertEquals(0x98765432, nk8.words()[1]);
    PackedInt4Matrix k8n = PackedInt4Matrix.fromCodes(Int4Layout.K8_N, 8, 8, codes);
    assertEquals(0x98765432, k8n.words()[1]);
    PackedInt4Matrix kn8 = PackedInt4Matrix.fromCodes(Int4Layout.K_N8, 8, 8, codes);
    // Row k = 1 of [K, N/8]: codes n = 0..7 are 1, 3, ..., 15.
    assertEquals(0xFDB97531, kn8.words()[1]);
    PackedInt4Matrix n8k = PackedInt4Matrix.fromCodes(Int4Layout.N8_K, 8, 8, codes);
    assertEquals(0xFDB97531, n8k.words()[1]);
  }

  @Test
  void shapesArePinned() {
    assertArrayEquals(new long[] {4096, 512}, Int4Layout.N_K8.shape(4096, 4096));
    assertArrayEquals(new long[] {1536, 48}, Int4Layout.N_K8.shape(384, 1536));
    assertArrayEquals(new long[] {48, 1536}, Int4Layout.K8_N.shape(384, 1536));
    assertArrayEquals(new long[] {384, 192}, Int4Layout.K_N8.shape(384, 1536));
    assertArrayEquals(new long[] {192, 384}, Int4Layout.N8_K.shape(384, 1536));
  }

  @Test
  void everyLayoutConvertsToEveryOtherAndBack() {
    Random r = new Random(SEED);
    int[][] shapes = {{8, 8}, {16, 8}, {8, 24}, {64, 40}, {256, 136}};
    for (int[] s : shapes) {
      byte[] codes = randomCodes(r, s[0], s[1]);
      for (Int4Layout from : Int4Layout.values()) {
        PackedInt4Matrix a = PackedInt4Matrix.fromCodes(from, s[0], s[1], codes);
        assertArrayEquals(codes, a.codes());
        for (Int4Layout to : Int4Layout.values()) {
          PackedInt4Matrix b = a.toLayout(to);
          assertEquals(to, b.layout());
          assertArrayEquals(codes, b.codes(), from + " -> " + to + " " + s[0] + "x" + s[1]);
          assertArrayEquals(
              a.words(), b.toLayout(from).words(), "inverse of " + from + " -> " + to);
        }
      }
    }
  }

  @Test
  void allZeroAndAllFifteenNibbles() {
    for (int fill : new int[] {0, 15}) {
      byte[] codes = new byte[32 * 16];
      java.util.Arrays.fill(codes, (byte) fill);
      for (Int4Layout l : Int4Layout.values()) {
        PackedInt4Matrix m = PackedInt4Matrix.fromCodes(l, 32, 16, codes);
        for (int w : m.words()) {
          assertEquals(fill == 0 ? 0 : 0xFFFFFFFF, w);
        }
      }
    }
  }

  @Test
  void signedInt8PackingMatchesTheSeedAndInverts() {
    Random r = new Random(SEED + 1);
    int k = 32;
    int n = 16;
    byte[] values = new byte[n * k];
    for (int i = 0; i < values.length; i++) {
      values[i] = (byte) (r.nextInt(16) - 8);
    }
    PackedInt4Matrix p = PackedInt4Matrix.fromInt8NK(Int4Layout.N_K8, k, n, values, 8);
    // Seed: word [n, j] nibble i = values[n, 8j + i] + 8.
    for (int row = 0; row < n; row++) {
      for (int j = 0; j < k / 8; j++) {
        int expected = 0;
        for (int i = 0; i < 8; i++) {
          expected |= (values[row * k + 8 * j + i] + 8) << (4 * i);
        }
        assertEquals(expected, p.words()[row * (k / 8) + j]);
      }
    }
    assertArrayEquals(values, p.toInt8NK(8));
  }

  @Test
  void gptqV1ZeroCorrectionAddsOneModSixteen() {
    PackedInt4Matrix v1 = new PackedInt4Matrix(Int4Layout.K_N8, 1, 8, new int[] {0x7777777F});
    PackedInt4Matrix fixed = v1.addToEveryCode(1);
    assertEquals(0x88888880, fixed.words()[0]);
    assertTrue(fixed.addToEveryCode(-1).sameCodes(v1));
  }

  @Test
  void wrongSizesAreRejectedWithTheShape() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> new PackedInt4Matrix(Int4Layout.K_N8, 16, 12, new int[24]));
    assertEquals(
        "a K_N8 [K, N/8] packing needs positive sizes and its packed axis divisible by 8, but K=16,"
            + " N=12",
        e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> new PackedInt4Matrix(Int4Layout.N_K8, 16, 8, new int[15]));
    assertEquals(
        "a [N, K/8] packing of K=16, N=8 holds 16 words, but 15 were given", e.getMessage());
  }

  @Test
  void transposeIsItsOwnInverse() {
    float[] m = {1, 2, 3, 4, 5, 6};
    float[] t = MatrixTranspose.of(m, 2, 3);
    assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, t);
    assertArrayEquals(m, MatrixTranspose.of(t, 3, 2));
  }
}
