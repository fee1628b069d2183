package io.q4spark.kernels.repack;

/**
 * Transposes of row-major matrices, the repack step for scales (compressed-tensors [N, K/G] to the
 * kernels' [K/G, N]; zero points change layout through {@code PackedInt4Matrix.toLayout}). Applying
 * a transpose twice (with the shape swapped) gives the input back.
 */
public final class MatrixTranspose {
  private MatrixTranspose() {}

  /** [rows, cols] to [cols, rows]. */
  public static float[] of(float[] m, int rows, int cols) {
    checkSize(m.length, rows, cols);
    float[] t = new float[m.length];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        t[c * rows + r] = m[r * cols + c];
      }
    }
    return t;
  }

  private static void checkSize(int length, int rows, int cols) {
    if ((long) rows * cols != length) {
      throw new IllegalArgumentException(
          "a ["
              + rows
              + ", "
              + cols
              + "] matrix holds "
              + (long) rows * cols
              + " values, got "
              + length);
    }
  }
}
