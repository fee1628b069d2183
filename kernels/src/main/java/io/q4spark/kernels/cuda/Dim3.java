package io.q4spark.kernels.cuda;

/** A grid or block shape of a kernel launch; every extent is at least 1. */
public record Dim3(int x, int y, int z) {
  public Dim3 {
    if (x < 1 || y < 1 || z < 1) {
      throw new IllegalArgumentException(
          "every extent of a launch dimension should be at least 1, but was ("
              + x
              + ", "
              + y
              + ", "
              + z
              + ")");
    }
  }

  /** {@code (x, 1, 1)}. */
  public static Dim3 of(int x) {
    return new Dim3(x, 1, 1);
  }

  /** {@code (x, y, 1)}. */
  public static Dim3 of(int x, int y) {
    return new Dim3(x, y, 1);
  }

  /** {@code x * y * z}. */
  public long volume() {
    return (long) x * y * z;
  }

  @Override
  public String toString() {
    return "(" + x + ", " + y + ", " + z + ")";
  }
}
