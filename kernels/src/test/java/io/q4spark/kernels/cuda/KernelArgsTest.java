package io.q4spark.kernels.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

// Reading the values back through the raw pointers of the void** array is the point of the test.
@SuppressWarnings("restricted")
class KernelArgsTest {
  @Test
  void pointersArrayPointsAtEachValueInItsOwnAlignedSlot() {
    try (Arena arena = Arena.ofConfined()) {
      KernelArgs args =
          KernelArgs.of(arena)
              .ptr(0x7f00_1234_5678L)
              .i32(-7)
              .i64(1L << 40)
              .f32(1.5f)
              .i32(Integer.MAX_VALUE);
      assertEquals(5, args.count());
      MemorySegment array = args.pointers();
      assertEquals(5 * ADDRESS.byteSize(), array.byteSize());

      MemorySegment p0 = array.getAtIndex(ADDRESS, 0).reinterpret(8);
      MemorySegment p1 = array.getAtIndex(ADDRESS, 1).reinterpret(4);
      MemorySegment p2 = array.getAtIndex(ADDRESS, 2).reinterpret(8);
      MemorySegment p3 = array.getAtIndex(ADDRESS, 3).reinterpret(4);
      MemorySegment p4 = array.getAtIndex(ADDRESS, 4).reinterpret(4);
      assertEquals(0x7f00_1234_5678L, p0.get(JAVA_LONG, 0));
      assertEquals(-7, p1.get(JAVA_INT, 0));
      assertEquals(1L << 40, p2.get(JAVA_LONG, 0));
      assertEquals(1.5f, p3.get(JAVA_FLOAT, 0));
      assertEquals(Integer.MAX_VALUE, p4.get(JAVA_INT, 0));

      assertEquals(0, p0.address() % 8, "8-byte slot alignment");
      assertEquals(0, p1.address() % 4, "4-byte slot alignment");
      assertEquals(0, p2.address() % 8, "8-byte slot alignment");
      assertEquals(0, p3.address() % 4, "4-byte slot alignment");
      assertEquals(
          "[ptr 0x7f0012345678, i32 -7, i64 1099511627776, f32 1.5, i32 2147483647]",
          args.toString());
    }
  }

  @Test
  void addingAfterBuildingRebuilds() {
    try (Arena arena = Arena.ofConfined()) {
      KernelArgs args = KernelArgs.of(arena).i32(1);
      MemorySegment first = args.pointers();
      assertEquals(first, args.pointers(), "built once");
      args.i32(2);
      MemorySegment second = args.pointers();
      assertEquals(2 * ADDRESS.byteSize(), second.byteSize());
      assertEquals(2, second.getAtIndex(ADDRESS, 1).reinterpret(4).get(JAVA_INT, 0));
    }
  }

  @Test
  void noArgumentsIsNull() {
    try (Arena arena = Arena.ofConfined()) {
      assertEquals(MemorySegment.NULL, KernelArgs.of(arena).pointers());
    }
  }

  @Test
  void dim3() {
    assertEquals(new Dim3(4, 1, 1), Dim3.of(4));
    assertEquals(new Dim3(4, 3, 1), Dim3.of(4, 3));
    assertEquals(24, new Dim3(4, 3, 2).volume());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dim3.of(0));
    assertEquals(
        "every extent of a launch dimension should be at least 1, but was (0, 1, 1)",
        e.getMessage());
  }
}
